"""Talker or listener for test_netns, each run in its own network namespace.

Usage: netns_peer.py talk <hz> | netns_peer.py listen
The talker publishes std_msgs/Header on `netns/chatter` with frame_id a running count; the
listener prints one line per message, "<count> <time.monotonic() at receipt>". Both print
"ready <time.monotonic()>" once their publisher or subscription exists, so discovery time can be
told from start-up time. The monotonic clock is shared by all namespaces, so the test can compare
it with its own.
"""

import itertools
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import Header

from sentryfuse_ros.nodes.qos import reliable_qos

TOPIC = "netns/chatter"


def talk(node, hz: float) -> None:
    publisher = node.create_publisher(Header, TOPIC, reliable_qos(10))
    count = itertools.count()
    node.create_timer(1.0 / hz, lambda: publisher.publish(Header(frame_id=str(next(count)))))


def listen(node) -> None:
    def received(message: Header) -> None:
        print(message.frame_id, time.monotonic(), flush=True)

    node.create_subscription(Header, TOPIC, received, reliable_qos(10))


def main() -> None:
    rclpy.init()
    node = rclpy.create_node(f"netns_{sys.argv[1]}")
    if sys.argv[1] == "talk":
        talk(node, float(sys.argv[2]))
    else:
        listen(node)
    print("ready", time.monotonic(), flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
