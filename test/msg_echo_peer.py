"""Echo peer for test_messages: republishes every message it receives, unchanged.

Runs as its own process so a round trip crosses process boundaries over real DDS.
Usage: msg_echo_peer.py <MessageType> <seconds>
"""

import sys
import time

import rclpy

import sentryfuse.msg
from sentryfuse_ros.nodes.qos import reliable_qos


def main() -> None:
    message_type = getattr(sentryfuse.msg, sys.argv[1])
    lifetime_s = float(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("msg_echo_peer")
    qos = reliable_qos(10)
    publisher = node.create_publisher(message_type, "roundtrip/out", qos)
    node.create_subscription(message_type, "roundtrip/in", publisher.publish, qos)
    print("echo peer ready", flush=True)
    deadline = time.monotonic() + lifetime_s
    while rclpy.ok() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
