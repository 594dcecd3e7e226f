"""The test's side of the wire for inference_node: start it (with heartbeat_monitor) as processes,
collect its Predictions, set its parameters."""

from __future__ import annotations

from rclpy.parameter import Parameter as RclpyParameter
from rcl_interfaces.srv import SetParameters

from conftest import REPO_ROOT, must_call
from sentryfuse.msg import Prediction
from sentryfuse_ros.nodes.qos import reliable_qos

RATES = {"camera": 15.0, "imu": 100.0, "audio": 20.0}
# 20 predictions/s at the levels a test without a battery sees (unknown: normal) or sets (full).
FAST_TICKS = [arg for level in ("full", "normal") for arg in ("-p", f"policy.{level}.rate_hz:=20.0")]


def start(processes, tiny_weights, *extra, monitor: bool = True):
    """heartbeat_monitor (unless not `monitor`) and inference_node on the shipped parameter file,
    the test's weights, 20 ticks/s at full and normal, then `extra` ROS arguments."""
    weights, gate = tiny_weights
    if monitor:
        processes.start("-m", "sentryfuse_ros.nodes.heartbeat_monitor", "--ros-args",
                        "--params-file", str(REPO_ROOT / "config" / "sentryfuse.yaml"), name="monitor")
    return processes.start(
        "-m", "sentryfuse_ros.nodes.inference_node", "--ros-args",
        "--params-file", str(REPO_ROOT / "config" / "sentryfuse.yaml"),
        "-p", f"weights_path:={weights}", "-p", f"gate_path:={gate}", *FAST_TICKS, *extra,
        name="inference",
    )


def set_parameter(node, name, value, target: str = "/inference_node"):
    """The SetParametersResult of setting one parameter (type from the Python value)."""
    request = SetParameters.Request(parameters=[RclpyParameter(name, value=value).to_parameter_msg()])
    return must_call(node, SetParameters, f"{target}/set_parameters", request).results[0]


class Predictions:
    def __init__(self, node):
        self.received: list[Prediction] = []
        node.create_subscription(Prediction, "sentryfuse/prediction", self.received.append, reliable_qos(10))

    def latest(self):
        return self.received[-1] if self.received else None

    def since(self, index):
        return self.received[index:]
