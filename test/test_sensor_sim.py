"""sensor_sim as a separate process: rates, headers, ground truth, the fault schedule, and the
monitor following its faults end to end. Every wait is bounded."""

import math
import time
from collections import defaultdict

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Header

from monitor_rig import TOPICS, MonitorRig
from sentryfuse_ros.modalities import CLASS_NAMES
from sentryfuse_ros.nodes import decode
from sentryfuse_ros.nodes.lifecycle import activate_remote
from sentryfuse_ros.nodes.qos import latched_state_qos
from sentryfuse_ros.nodes.stamps import stamp_to_s

SIM = ("-m", "sentryfuse_ros.nodes.sensor_sim", "--ros-args", "-p", "source:=synthetic")
MONITOR = ("-m", "sentryfuse_ros.nodes.heartbeat_monitor", "--ros-args")
# Deep best-effort queues so a busy test process does not lose what it counts.
OBSERVER_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture(scope="module")
def node():
    rclpy.init()
    test_node = rclpy.create_node("test_sensor_sim")
    yield test_node
    test_node.destroy_node()
    rclpy.shutdown()


class Recorder:
    """Every message of the sim's topics, with its receive time (ROS clock, seconds)."""

    def __init__(self, node):
        self.node = node
        self.received = defaultdict(list)
        self.subs = [
            node.create_subscription(msg_type, topic, self._keep(sensor), OBSERVER_QOS)
            for sensor, (msg_type, topic) in TOPICS.items()
        ]
        self.subs.append(node.create_subscription(Header, "sentryfuse/ground_truth", self._keep("ground_truth"),
                                                  latched_state_qos()))

    def _keep(self, name):
        return lambda msg: self.received[name].append((self.node.get_clock().now().nanoseconds * 1e-9, msg))

    def spin(self, seconds, until=lambda: False):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return until()

    def close(self):
        for sub in self.subs:
            self.node.destroy_subscription(sub)


@pytest.fixture
def recorder(node):
    made = Recorder(node)
    yield made
    made.close()


def _rate(times):
    return (len(times) - 1) / (times[-1] - times[0])


def test_sim_publishes_each_sensor_at_its_rate_with_headers_and_ground_truth(processes, recorder):
    sim = processes.start(*SIM, "-p", "sample_period_s:=1.0", "-p", "battery.rate_hz:=4.0", name="sim")
    assert recorder.spin(30, until=lambda: len(recorder.received["camera"]) > 0), processes.log(sim)
    recorder.received.clear()
    recorder.spin(4.0)
    got = recorder.received
    for sensor, rate in (("camera", 15), ("imu", 100), ("audio", 20), ("battery", 4)):
        times = [t for t, _ in got[sensor]]
        assert len(times) > 2 and _rate(times) == pytest.approx(rate, rel=0.25), sensor
        stamps = [stamp_to_s(m.header.stamp) for _, m in got[sensor]]
        assert all(b > a for a, b in zip(stamps, stamps[1:])), f"{sensor} stamps not increasing"
        assert all(-0.01 < t - s < 0.5 for (t, _), s in zip(got[sensor], stamps)), f"{sensor} stamps off the clock"
    camera = got["camera"][-1][1]
    assert camera.header.frame_id == "camera_optical_frame" and decode.image_from_msg(camera).shape == (28, 28)
    imu = decode.imu_sample_from_msg(got["imu"][-1][1])
    assert imu[2] == pytest.approx(9.81, abs=0.2)  # gravity on z in the synthetic trajectory
    audio_receipt, audio = got["audio"][-1]
    assert audio.sample_rate == 16000 and len(decode.audio_from_msg(audio, 16000)) == 800
    assert audio_receipt - stamp_to_s(audio.header.stamp) >= 0.045  # stamp = first sample, 50 ms earlier
    battery = got["battery"][-1][1]
    assert battery.percentage == pytest.approx(1.0) and battery.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
    labels = [m.frame_id for _, m in got["ground_truth"]]
    assert len(labels) >= 3 and all(label in CLASS_NAMES for label in labels)
    assert all(int(b) == (int(a) + 1) % 10 for a, b in zip(labels, labels[1:]))  # synthetic label = index % 10
    label_times = [stamp_to_s(m.stamp) for _, m in got["ground_truth"]]
    assert np.diff(label_times) == pytest.approx(1.0, abs=0.15)


def _write_schedule(tmp_path, faults):
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump({"faults": faults}))
    return path


def test_fault_schedule_drops_injects_and_drives_the_battery(processes, recorder, tmp_path):
    schedule = _write_schedule(tmp_path, [
        {"fault": "drop", "sensor": "camera", "at": 4.0, "duration": 1.0},
        {"fault": "malformed", "sensor": "imu", "at": 3.5, "kind": "nan", "count": 3},
        {"fault": "battery_raw", "at": 0.0, "duration": 5.0, "value": 85.0},
        {"fault": "battery_charging", "at": 5.0, "duration": 3.0},
    ])
    # Half rate: also checks rate_scale (and is lighter on a busy machine).
    sim = processes.start(*SIM, "-p", f"fault_schedule:={schedule}", "-p", "battery.rate_hz:=10.0",
                          "-p", "rate_scale:=0.5", "-p", "autostart:=false", name="sim")
    # Activated from here, once this test listens, so the schedule's clock starts now.
    assert activate_remote(recorder.node, "/sensor_sim", 30) is not None, processes.log(sim)
    assert recorder.spin(10, until=lambda: len(recorder.received["camera"]) > 0), processes.log(sim)
    charging = BatteryState.POWER_SUPPLY_STATUS_CHARGING
    assert recorder.spin(15, until=lambda: any(m.power_supply_status == charging for _, m in recorder.received["battery"]))
    recorder.spin(0.5)
    got = recorder.received
    camera_times = [t for t, _ in got["camera"]]
    assert max(np.diff(camera_times)) == pytest.approx(1.0, abs=0.3)
    assert np.median(np.diff(camera_times)) == pytest.approx(2 / 15, rel=0.2)  # 7.5 Hz
    nan_imu = [m for _, m in got["imu"] if math.isnan(m.linear_acceleration.x)]
    assert len(nan_imu) == 3
    assert {m.percentage for _, m in got["battery"] if m.power_supply_status != charging} == {85.0}
    assert {m.percentage for _, m in got["battery"] if m.power_supply_status == charging} == {1.0}
    assert "fault: camera stops" in processes.log(sim)


def test_a_bad_fault_schedule_fails_configuration_with_the_reason(processes, tmp_path):
    schedule = _write_schedule(tmp_path, [{"fault": "drop", "sensor": "lidar", "at": 1, "duration": 1}])
    sim = processes.start(*SIM, "-p", f"fault_schedule:={schedule}", name="sim")
    sim.wait(timeout=30)
    assert sim.returncode == 1 and "faults[0]" in processes.log(sim) and "lidar" in processes.log(sim)


def test_the_monitor_follows_the_simulated_faults(processes, node, tmp_path):
    # The sim is activated once the monitor is up; 5 bad frames among the good ones from 2 s
    # (counted, not fatal), then from 4 s the camera goes for 2 s and the battery drains to critical.
    schedule = _write_schedule(tmp_path, [
        {"fault": "malformed", "sensor": "camera", "at": 2.0, "kind": "step_mismatch", "count": 5},
        {"fault": "drop", "sensor": "camera", "at": 4.0, "duration": 2.0},
        {"fault": "battery_drain", "at": 4.0, "duration": 2.0, "to": 0.05},
    ])
    rig = MonitorRig(node)
    try:
        monitor = processes.start(*MONITOR, "-p", "camera.timeout_s:=0.3", name="monitor")
        sim = processes.start(*SIM, "-p", f"fault_schedule:={schedule}", "-p", "battery.rate_hz:=5.0",
                              "-p", "autostart:=false", name="sim")
        assert rig.run(40, until=lambda: rig.state is not None), processes.log(monitor)
        assert activate_remote(node, "/sensor_sim", 30) is not None, processes.log(sim)
        alive = lambda: list(rig.state.live_modalities) == ["camera", "imu", "audio"]  # noqa: E731
        assert rig.run(4, until=alive), processes.log(monitor) + processes.log(sim)
        camera_down = lambda: rig.state is not None and not rig.state.camera_alive  # noqa: E731
        assert rig.run(15, until=camera_down), processes.log(sim)
        assert rig.run(8, until=lambda: rig.state.camera_alive), "camera never came back"
        assert rig.run(5, until=lambda: rig.state.power_level_name == "critical")
        camera = [s.camera_alive for _, s in rig.states]
        assert sum(a and not b for a, b in zip(camera, camera[1:])) == 1  # only the scheduled drop
        assert rig.run(3, until=lambda: rig.status_values("camera").get("invalid_messages") == "5")
        assert monitor.poll() is None and sim.poll() is None
    finally:
        rig.close()


def test_replays_the_prepared_test_split_when_there_is_one():
    dataset = pytest.importorskip("sentryfuse_ros.data.dataset", reason="data.dataset not written yet")
    try:
        split = dataset.load_split("test")
    except Exception as error:  # noqa: BLE001 - only a missing cache is a reason to skip
        pytest.skip(f"test split not prepared (`sentryfuse data prepare`): {error}")
    from sentryfuse_ros.nodes.sim_sources import DatasetSource

    source = DatasetSource("test")
    sample = source.sample(0)
    assert len(source) == len(split) > 0
    assert sample.image.dtype == np.uint8 and sample.image.ndim == 2
    assert sample.imu.shape[1] == 6 and sample.audio.ndim == 1 and int(sample.label) in range(len(CLASS_NAMES))
