"""Run inside the robot's network namespace by test_offload_netns.py: writes every Prediction
(receipt time, origin, stamp) and every change of inference_node's `offload link` diagnostic as
JSON lines, so the test (outside the namespace, where it cannot hear DDS) can follow them.

    python offload_recorder.py OUT.jsonl SECONDS
"""

import json
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray

from sentryfuse.msg import Prediction
from sentryfuse_ros.nodes.diagnostics import NAME_PREFIX
from sentryfuse_ros.nodes.qos import reliable_qos
from sentryfuse_ros.nodes.stamps import stamp_to_ns


def main(out_path: str, seconds: float) -> int:
    rclpy.init()
    node = rclpy.create_node("offload_recorder")
    link = [None]
    with open(out_path, "w", buffering=1) as out:
        def on_prediction(msg: Prediction) -> None:
            out.write(json.dumps({"t": time.monotonic(), "origin": msg.origin,
                                  "stamp": stamp_to_ns(msg.header.stamp)}) + "\n")

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name != NAME_PREFIX + "inference":
                    continue
                value = next((kv.value for kv in status.values if kv.key == "offload link"), None)
                if value is not None and value != link[0]:
                    link[0] = value
                    out.write(json.dumps({"t": time.monotonic(), "link": value}) + "\n")

        node.create_subscription(Prediction, "sentryfuse/prediction", on_prediction, reliable_qos(50))
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable_qos(10))
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)
        except KeyboardInterrupt:
            pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
