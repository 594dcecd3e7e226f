"""heartbeat_monitor as a separate process over DDS: dropout, hysteresis, flapping, battery rules,
malformed input, diagnostics levels, lifecycle and parameter services, QoS deadline; and, in this
process, a monitor that stalls. Every wait is bounded."""

import math
import time

import cv2
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import BatteryState, CompressedImage, Image

from conftest import must_call
from monitor_rig import IMAGE, MonitorRig
from sentryfuse.msg import ModalityState
from sentryfuse_ros.nodes import encode
from sentryfuse_ros.nodes.heartbeat_monitor import HeartbeatMonitor
from sentryfuse_ros.nodes.lifecycle import autostart
from sentryfuse_ros.nodes.malformed import malformed
from sentryfuse_ros.nodes.qos import latched_state_qos, reliable_qos, sensor_qos

MONITOR = ("-m", "sentryfuse_ros.nodes.heartbeat_monitor", "--ros-args")
STARTUP_S = 40.0  # importing the preprocessing stack (torch) on two busy cores
# How much later than its timeout a death may be seen here: the monitor's watchdog and this
# process's spin both wait for a busy CPU.
DETECTION_SLACK_S = 3.0


@pytest.fixture
def rig(ros_node):
    rigs = []

    def make(**kwargs):
        rigs.append(MonitorRig(ros_node, **kwargs))
        return rigs[-1]

    yield make
    for made in rigs:
        made.close()


def start_monitor(processes, *ros_args):
    return processes.start(*MONITOR, *ros_args, name="monitor")


def wait_ready(rig, processes, monitor):
    assert rig.run(STARTUP_S, until=lambda: rig.state is not None or monitor.poll() is not None)
    assert monitor.poll() is None, processes.log(monitor)


def camera_alive(rig):
    return rig.state is not None and rig.state.camera_alive


@pytest.mark.slow  # a monitor process over DDS
def test_camera_dropout_recovery_hysteresis_and_flapping(processes, rig):
    timeout, recover = 0.4, 10
    # Also checks that --ros-args reach the node: namespace and a remapped camera topic. The slow
    # heartbeat makes sure the death is reported by the camera's own watchdog, not the heartbeat.
    monitor = start_monitor(processes, "-r", "__ns:=/robot1", "-r", "camera/image_raw:=/front/image",
                            "-p", f"camera.timeout_s:={timeout}", "-p", f"camera.recover_messages:={recover}",
                            "-p", "heartbeat_hz:=0.2")
    r = rig(namespace="/robot1", topics={"camera": "/front/image"})
    wait_ready(r, processes, monitor)
    assert r.run(20, {"camera": 15}, until=lambda: camera_alive(r)), processes.log(monitor)
    assert list(r.state.live_modalities) == ["camera"]
    assert r.run(15, {"camera": 15}, until=lambda: getattr(r.status("camera"), "level", None) == DiagnosticStatus.OK)
    assert r.status("imu").level == DiagnosticStatus.STALE  # never heard of

    # Stop: dead within its timeout, and the live set changes.
    r.run(1.0, {"camera": 15})
    assert camera_alive(r), "false dropout of a healthy 15 Hz camera"
    last_frame = r.last_sent["camera"]
    assert r.run(timeout + DETECTION_SLACK_S, until=lambda: not camera_alive(r))
    detected = next(t for t, s in r.states if t > last_frame and not s.camera_alive)
    assert timeout - 0.02 <= detected - last_frame  # never before its timeout (a busy machine only delays it)
    assert list(r.state.live_modalities) == []
    assert r.run(3.0, until=lambda: getattr(r.status("camera"), "level", None) == DiagnosticStatus.ERROR)

    # Restart: alive only after `recover` frames.
    sent_before = r.sent["camera"]
    assert r.run(10, {"camera": 15}, until=lambda: camera_alive(r))
    frames = r.sent["camera"] - sent_before
    assert recover <= frames <= recover + 8, frames

    # Flapping at 1 Hz (0.5 s on: 7-8 frames < recover): it dies once and stays out.
    r.run(1.0, {"camera": 15})
    before = len(r.states) - 1
    for _ in range(6):
        r.run(0.5, {"camera": 15})
        r.run(0.5)
    flapping = [s.camera_alive for _, s in r.states[before:]]
    assert flapping[0] and not flapping[-1]
    assert sum(a != b for a, b in zip(flapping, flapping[1:])) == 1, flapping
    assert r.run(3.0, until=lambda: r.status_values("camera").get("dropouts") == "2")
    assert monitor.poll() is None


def _sending(r, percentage, charging=False):
    """An on_tick that sends this BatteryState every 0.2 s."""
    def send(now):
        if now - r.last_sent.get("battery", 0.0) >= 0.2:
            r.battery(percentage, charging)
    return send


def _state_until(r, send, check, seconds=6.0):
    return r.run(seconds, on_tick=send, until=lambda: r.state is not None and check(r.state))


def _diagnostic_until(r, send, level, words, seconds=4.0):
    return r.run(seconds, on_tick=send,
                 until=lambda: (s := r.status("battery")) is not None and s.level == level and words in s.message)


@pytest.mark.slow  # a monitor process over DDS
def test_battery_fraction_percent_nan_stale_and_charging_are_handled_as_documented(processes, rig):
    monitor = start_monitor(processes, "-p", "battery.timeout_s:=3.0")
    r = rig()
    wait_ready(r, processes, monitor)
    assert r.state.power_level_name == "normal" and math.isnan(r.state.battery_percentage)  # unknown

    half = _sending(r, 0.5)
    assert _state_until(r, half, lambda s: s.power_level_name == "normal" and abs(s.battery_percentage - 0.5) < 1e-6)
    assert r.state.pruning_budget == pytest.approx(0.2)
    assert _diagnostic_until(r, half, DiagnosticStatus.OK, "50%")
    low = _sending(r, 0.1)
    assert _state_until(r, low, lambda s: s.power_level_name == "critical")
    assert r.state.pruning_budget == pytest.approx(0.6)
    assert _diagnostic_until(r, low, DiagnosticStatus.ERROR, "critical")
    assert _state_until(r, _sending(r, 0.1, charging=True), lambda s: s.charging and s.power_level_name == "full")

    # NaN: ignored with a WARN; the last usable reading holds until it is stale (3 s), then unknown.
    last_usable = r.last_sent["battery"]
    nan = _sending(r, float("nan"))
    assert _diagnostic_until(r, nan, DiagnosticStatus.WARN, "ignored", seconds=10.0)
    assert _state_until(r, nan, lambda s: math.isnan(s.battery_percentage), seconds=15.0)
    unknown_at = next(t for t, s in r.states if t > last_usable and math.isnan(s.battery_percentage))
    held = [s.battery_percentage for t, s in r.states if last_usable < t < unknown_at]
    assert held and all(abs(p - 0.1) < 1e-6 for p in held), held  # the NaNs changed nothing
    assert unknown_at - last_usable >= 3.0 - 0.05  # unknown because stale, not because of a NaN
    assert r.state.power_level_name == "normal" and not r.state.charging
    assert _diagnostic_until(r, nan, DiagnosticStatus.WARN, "stale")

    # 0..100: divided by 100 with a WARN, and the source is read as percent from then on.
    percent = _sending(r, 85.0)
    assert _state_until(r, percent, lambda s: abs(s.battery_percentage - 0.85) < 1e-6)
    assert r.state.power_level_name == "full"
    assert _diagnostic_until(r, percent, DiagnosticStatus.WARN, "0..100")
    assert _state_until(r, _sending(r, 0.5), lambda s: abs(s.battery_percentage - 0.005) < 1e-6)
    assert monitor.poll() is None


BAD = [("camera", "step_mismatch"), ("imu", "nan"), ("audio", "zero_rate"), ("camera", "size_mismatch"),
       ("imu", "inf"), ("audio", "empty"), ("camera", "bad_encoding"), ("imu", "no_accel"), ("audio", "nan"),
       ("camera", "stamp_backwards"), ("camera", "stamp_future"), ("imu", "stamp_zero")]


@pytest.mark.slow  # a monitor process over DDS
def test_malformed_messages_are_counted_reported_and_survived(processes, rig):
    monitor = start_monitor(processes, "-p", "camera.timeout_s:=0.4", "-p", "camera.recover_messages:=5")
    r = rig()
    wait_ready(r, processes, monitor)
    assert r.run(20, {"camera": 15}, until=lambda: camera_alive(r))
    queue = list(BAD)

    def send_bad(now):
        # Spaced out: the monitor's depth-1 subscriptions would otherwise drop some unread.
        if queue and now - r.last_sent.get("bad", 0.0) >= 0.15:
            sensor, kind = queue.pop(0)
            r.send(sensor, malformed(sensor, kind, r.message(sensor)))
            r.last_sent["bad"] = now

    r.run(len(BAD) * 0.15 + 0.5, {"camera": 15}, on_tick=send_bad)
    expected = {s: sum(1 for sensor, _ in BAD if sensor == s) for s in ("camera", "imu", "audio")}
    counted = lambda: all(r.status_values(s).get("invalid_messages") == str(n) for s, n in expected.items())  # noqa: E731
    assert r.run(15, {"camera": 15}, until=counted), {s: r.status_values(s) for s in expected}
    assert monitor.poll() is None
    assert camera_alive(r), "valid frames between the bad ones must keep the camera alive"
    camera = r.status("camera")
    assert camera.level == DiagnosticStatus.WARN and "stamp" in camera.message
    imu = r.status("imu")
    assert imu.level == DiagnosticStatus.ERROR and "only invalid" in imu.message
    assert "NaN" in r.status_values("audio")["last_invalid_reason"]


@pytest.mark.slow  # a monitor process over DDS
def test_lifecycle_parameter_services_and_a_compressed_camera(processes, rig, ros_node):
    monitor = start_monitor(processes, "-p", "autostart:=false", "-p", "camera.compressed:=true",
                            "-p", "camera.recover_messages:=3")
    r = rig(topics={"camera": "/unused/camera"})
    compressed = ros_node.create_publisher(CompressedImage, "/camera/image_raw", sensor_qos("reliable"))
    png = cv2.imencode(".png", IMAGE)[1].tobytes()

    def transition(transition_id, timeout=10.0):
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return must_call(ros_node, ChangeState, "/heartbeat_monitor/change_state", request, timeout).success

    try:
        assert transition(Transition.TRANSITION_CONFIGURE, timeout=STARTUP_S), processes.log(monitor)
        assert not r.run(1.0, until=lambda: r.state is not None), "an inactive node must not publish"
        assert transition(Transition.TRANSITION_ACTIVATE)
        assert r.run(10, until=lambda: r.state is not None)

        def send_png(now):
            if now - r.last_sent.get("png", 0.0) >= 1 / 15:
                compressed.publish(CompressedImage(header=r.message("camera").header, format="png", data=png))
                r.last_sent["png"] = now

        assert r.run(10, on_tick=send_png, until=lambda: camera_alive(r))

        def set_param(name, value):
            request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
            return must_call(ros_node, SetParameters, "/heartbeat_monitor/set_parameters", request).results[0]

        too_short = set_param("camera.timeout_s", 0.01)
        assert not too_short.successful and "must exceed one period" in too_short.reason
        assert not set_param("power.thresholds", [0.2, 0.5, 0.1]).successful
        assert not set_param("camera.topic", "/elsewhere").successful  # read-only
        assert set_param("power.pruning_budgets", [0.0, 0.1, 0.3, 0.5]).successful
        assert r.run(5, until=lambda: abs(r.state.pruning_budget - 0.1) < 1e-6)  # applied live (normal level)
    finally:
        ros_node.destroy_publisher(compressed)


def test_bad_parameters_fail_configuration_with_the_reason(ros_node, capfd):  # ros_node: rclpy is up
    monitor = HeartbeatMonitor(parameter_overrides=[Parameter("imu.timeout_s", value=0.005)])
    try:
        assert not autostart(monitor)  # run_node then exits with status 1
    finally:
        monitor.destroy_node()
    assert "imu.timeout_s (0.005 s) must exceed one period" in capfd.readouterr().err


@pytest.mark.slow  # a monitor process over DDS
def test_qos_deadline_matches_publishers_that_offer_one_and_flags_those_that_do_not(processes, rig):
    monitor = start_monitor(processes, "-p", "qos_deadline:=true", "-p", "camera.timeout_s:=0.4",
                            "-p", "camera.recover_messages:=5")
    offering = sensor_qos("best_effort", deadline_s=0.2)
    r = rig(qos=offering)
    plain = rig(topics={"camera": "/unused/camera", "imu": "/imu/data"})  # default QoS: no deadline offered
    wait_ready(r, processes, monitor)
    assert r.run(20, {"camera": 15}, until=lambda: camera_alive(r))
    problem = lambda: "DEADLINE" in plain.status_values("imu").get("qos_problem", "")  # noqa: E731
    assert r.run(10, {"camera": 15}, until=problem), r.status_values("imu")
    assert r.run(3, until=lambda: not camera_alive(r))


class InProcessMonitor:
    """A monitor spun by the test itself, so the test decides exactly when it is stalled."""

    def __init__(self, prefix: str, **params):
        overrides = [Parameter("camera.topic", value=f"{prefix}/camera"),
                     Parameter("battery.topic", value=f"{prefix}/battery"),
                     Parameter("state_topic", value=f"{prefix}/state")]
        self.monitor = HeartbeatMonitor(parameter_overrides=overrides + [Parameter(k.replace("__", "."), value=v)
                                                                         for k, v in params.items()])
        self.peer = rclpy.create_node(prefix.strip("/") + "_peer")
        self.executor = SingleThreadedExecutor()
        assert autostart(self.monitor)
        self.executor.add_node(self.monitor)
        self.executor.add_node(self.peer)
        self.camera = self.peer.create_publisher(Image, f"{prefix}/camera", sensor_qos("reliable"))
        self.battery_pub = self.peer.create_publisher(BatteryState, f"{prefix}/battery", sensor_qos("reliable"))
        self.states, self.diagnostics = [], []
        self.peer.create_subscription(ModalityState, f"{prefix}/state", self.states.append, latched_state_qos())
        self.peer.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, reliable_qos(10))

    def frame(self) -> None:
        self.camera.publish(encode.image_to_msg(IMAGE, self.peer.get_clock().now().to_msg(), "cam"))

    def battery(self, percentage: float) -> None:
        self.battery_pub.publish(encode.battery_to_msg(percentage, False, self.peer.get_clock().now().to_msg(), "bat"))

    def spin(self, seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            self.executor.spin_once(timeout_sec=0.01)
        return bool(until and until())

    def stream(self, seconds: float, rate_hz: float, spin: bool) -> None:
        """Frames at rate_hz for `seconds`, spinning the monitor meanwhile or not (a stall)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.frame()
            next_frame = time.monotonic() + 1 / rate_hz
            if spin:
                self.spin(max(0.0, next_frame - time.monotonic()))
            else:
                time.sleep(max(0.0, next_frame - time.monotonic()))

    def camera_alive(self) -> bool:
        return bool(self.states) and self.states[-1].camera_alive

    def stream_until_camera_alive(self, seconds: float) -> bool:
        """15 Hz frames, spinning, until the camera is alive or `seconds` pass; whether it is."""
        deadline = time.monotonic() + seconds
        while not self.camera_alive() and time.monotonic() < deadline:
            self.stream(0.2, 15, spin=True)
        return self.camera_alive()

    def camera_value(self, key: str) -> str | None:
        """A key/value of the newest camera DiagnosticStatus."""
        return self.value("camera", key)

    def value(self, name: str, key: str) -> str | None:
        """A key/value of the newest DiagnosticStatus 'sentryfuse: <name>'."""
        for status in (self.diagnostics[-1].status if self.diagnostics else []):
            if status.name == f"sentryfuse: {name}":
                return next((kv.value for kv in status.values if kv.key == key), None)
        return None

    def close(self) -> None:
        self.executor.shutdown()
        self.monitor.destroy_node()
        self.peer.destroy_node()


@pytest.mark.slow  # seconds of timed waits on a live monitor
def test_a_stalled_monitor_does_not_kill_a_sensor_whose_frames_kept_arriving(ros_node):  # rclpy is up
    # The monitor is not spun for 2 s (> timeout) while frames keep coming; afterwards its
    # watchdog and the newest frame are ready in the same executor cycle. The timeout is long
    # enough that this test, publishing and spinning on a busy machine, never starves it.
    rig = InProcessMonitor("/stall_test", camera__timeout_s=1.0, camera__recover_messages=3)
    try:
        assert rig.stream_until_camera_alive(20.0)
        alive_from = len(rig.states) - 1
        rig.stream(2.0, 15, spin=False)
        rig.stream(1.0, 15, spin=True)
        assert all(s.camera_alive for s in rig.states[alive_from:])
    finally:
        rig.close()


def test_a_busy_monitor_ages_stamps_from_arrival_not_from_handling(ros_node):  # rclpy is up
    # A 2 Hz camera: a frame that arrives while the monitor is busy for 0.6 s is handled with its
    # stamp 0.6 s old, past the 0.3 s limit; it was fresh when it arrived, so it is valid.
    rig = InProcessMonitor("/age_test", camera__expected_rate_hz=2.0, camera__timeout_s=2.0,
                           camera__recover_messages=1, stamp__max_age_s=0.3, diagnostics_hz=10.0)
    try:
        rig.frame()
        assert rig.spin(20, until=rig.camera_alive)
        rig.frame()
        time.sleep(0.6)
        assert rig.spin(3, until=lambda: rig.camera_value("valid_messages") == "2"), rig.camera_value("last_invalid_reason")
        assert rig.camera_value("invalid_messages") == "0"
    finally:
        rig.close()


@pytest.mark.slow  # seconds of timed waits on a live monitor
def test_the_check_period_follows_the_power_level_live_and_bad_values_are_rejected(ros_node):  # rclpy is up
    # A 0.5 s check period at critical: the monitor looks at most once per 0.5 s (a count from
    # its own diagnostics, so a busy machine can only lower it); back at full: period 0 at once.
    rig = InProcessMonitor("/period_test", camera__recover_messages=3, diagnostics_hz=10.0)
    try:
        assert rig.stream_until_camera_alive(20.0)
        assert rig.value("battery", "check_period_s") == "0.000"  # battery unknown: normal

        def stream_with_battery(seconds, percentage):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                rig.battery(percentage)
                rig.stream(0.2, 15, spin=True)

        def at_period(text, percentage, seconds=10.0):
            end = time.monotonic() + seconds
            while rig.value("battery", "check_period_s") != text and time.monotonic() < end:
                stream_with_battery(0.2, percentage)
            return rig.value("battery", "check_period_s") == text

        assert at_period("0.500", 0.1)
        assert rig.states[-1].power_level_name == "critical"
        first = rig.diagnostics[-1]
        stream_with_battery(3.0, 0.1)
        last = rig.diagnostics[-1]

        def looks(array):
            return int(next(kv.value for st in array.status if st.name == "sentryfuse: battery"
                            for kv in st.values if kv.key == "looks"))

        window_s = (last.header.stamp.sec - first.header.stamp.sec) + (
            last.header.stamp.nanosec - first.header.stamp.nanosec) * 1e-9
        assert window_s > 1.0
        assert looks(last) - looks(first) <= window_s / 0.5 + 1, (looks(last) - looks(first), window_s)
        assert rig.camera_alive(), "a 15 Hz camera is alive however rarely it is looked at"
        # Every frame sent was taken: none overwritten in its queue between two looks.
        assert rig.camera_value("published") == rig.camera_value("taken") and rig.camera_value("lost") == "0"

        # Live: a longer critical period is applied at once; a bad one is rejected with the reason.
        ok = rig.monitor.set_parameters([Parameter("power.check_periods_s", value=[0.0, 0.0, 0.25, 1.0])])[0]
        assert ok.successful
        assert at_period("1.000", 0.1)
        stream_with_battery(2.5, 0.1)  # the deeper queues (resubscribed live) hold a second of frames
        assert rig.camera_alive() and rig.camera_value("published") == rig.camera_value("taken")
        for bad, words in (([0.0, 0.0, 0.25, 6.0], "<= 5"), ([0.0, -0.5, 0.25, 0.5], ">= 0"),
                           ([0.0, 0.0, math.nan, 0.5], "finite"), ([0.0, 0.25, 0.5], "needs 4 values")):
            result = rig.monitor.set_parameters([Parameter("power.check_periods_s", value=bad)])[0]
            assert not result.successful and "power.check_periods_s" in result.reason and words in result.reason, bad
        assert list(rig.monitor.get_parameter("power.check_periods_s").value) == [0.0, 0.0, 0.25, 1.0]

        # Charged again: full, period 0 as soon as the battery reading is taken.
        assert at_period("0.000", 0.9)
        assert rig.states[-1].power_level_name == "full" and rig.camera_alive()
    finally:
        rig.close()


@pytest.mark.slow  # a monitor process over DDS
def test_a_dropout_at_critical_is_seen_within_timeout_plus_the_check_period_and_at_full_as_before(processes, rig):
    period = 0.5  # power.check_periods_s at critical (the default)
    timeout = 0.163  # camera.timeout_s (the default)
    monitor = start_monitor(processes, "-p", "camera.recover_messages:=5", "-p", "heartbeat_hz:=0.2",
                            "-p", "battery.timeout_s:=30.0")
    r = rig()
    wait_ready(r, processes, monitor)

    def level_and_camera(percentage, level, check_period):
        send = _sending(r, percentage)
        return r.run(20, {"camera": 15}, on_tick=send, until=lambda: camera_alive(r) and (
            r.state.power_level_name == level and r.status_values("battery").get("check_period_s") == check_period))

    def dropout(slack_s):
        r.run(1.0, {"camera": 15})
        assert camera_alive(r), "false dropout of a healthy 15 Hz camera"
        last_frame = r.last_sent["camera"]
        assert r.run(timeout + slack_s, until=lambda: not camera_alive(r))
        detected = next(t for t, s in r.states if t > last_frame and not s.camera_alive)
        return detected - last_frame

    assert level_and_camera(0.1, "critical", "0.500"), (r.state, r.status_values("battery"), processes.log(monitor))
    # IMU at 100 Hz too: 50 messages between two looks, and none overwritten in its queue.
    r.run(3.0, {"camera": 15, "imu": 100}, on_tick=_sending(r, 0.1))
    assert r.run(5.0, {"camera": 15}, until=lambda: int(r.status_values("imu").get("taken", 0)) >= r.sent["imu"])
    imu = r.status_values("imu")
    assert imu["taken"] == imu["published"] == str(r.sent["imu"]), imu
    latency = dropout(period + DETECTION_SLACK_S)
    assert timeout - 0.02 <= latency <= timeout + period + DETECTION_SLACK_S, latency  # never before its timeout
    assert r.status_values("camera").get("lost", "0") == "0"

    assert level_and_camera(0.9, "full", "0.000"), (r.state, r.status_values("battery"))
    latency = dropout(DETECTION_SLACK_S)
    assert timeout - 0.02 <= latency <= timeout + DETECTION_SLACK_S, latency
    assert monitor.poll() is None
