"""The composed perception process: heartbeat_monitor and inference_node in one process, one
subscription per sensor topic for both, each node with its own name, parameters and output."""

from __future__ import annotations

import pytest

from conftest import REPO_ROOT
from monitor_rig import MonitorRig
from sentryfuse.msg import Prediction
from sentryfuse_ros.nodes.qos import reliable_qos

RATES = {"camera": 15.0, "imu": 100.0, "audio": 20.0}
pytestmark = pytest.mark.slow


def test_one_process_one_subscription_per_sensor_both_nodes_working(ros_node, processes, tiny_weights):
    weights, gate = tiny_weights
    perception = processes.start(
        "-m", "sentryfuse_ros.nodes.perception", "--ros-args",
        "--params-file", str(REPO_ROOT / "config" / "sentryfuse.yaml"),
        "-p", f"weights_path:={weights}", "-p", f"gate_path:={gate}", name="perception",
    )
    rig = MonitorRig(ros_node)
    predictions: list[Prediction] = []
    ros_node.create_subscription(Prediction, "sentryfuse/prediction", predictions.append, reliable_qos(10))
    all_three = lambda: bool(predictions) and list(predictions[-1].used_modalities) == ["camera", "imu", "audio"]  # noqa: E731
    assert rig.run(60.0, RATES, until=all_three), processes.log(perception)
    assert rig.states and list(rig.states[-1][1].live_modalities) == ["camera", "imu", "audio"]
    for topic in ("/camera/image_raw", "/imu/data", "/audio/chunk"):
        readers = ros_node.get_subscriptions_info_by_topic(topic)
        assert len(readers) == 1, f"{topic}: {[(r.node_name, r.qos_profile.depth) for r in readers]}"
    names = set(ros_node.get_node_names())
    assert {"heartbeat_monitor", "inference_node"} <= names
    # Both nodes report what the one subscription took: the monitor every IMU message sent.
    assert rig.run(10.0, RATES, until=lambda: int(rig.status_values("imu").get("taken", 0)) > 100)
    assert rig.run(10.0, RATES, until=lambda: int(rig.status_values("inference").get("taken imu", 0)) > 100)
    assert perception.poll() is None
