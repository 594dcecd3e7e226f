"""heartbeat_monitor and inference_node in one process, as a component container would run them.

Both nodes take their sensor messages from one shared SensorFeed, so each camera frame, IMU
sample and audio chunk crosses the middleware into this process once and is taken once for
both (a 640x480 frame costs a Python subscriber ~2.5 ms of CPU to take). Each node keeps its
own name, parameters (its section of the parameter YAML), lifecycle services and diagnostics.

    python -m sentryfuse_ros.nodes.perception --ros-args --params-file config/sentryfuse.yaml
"""

from __future__ import annotations

import sys
from functools import partial

from sentryfuse_ros.nodes.heartbeat_monitor import HeartbeatMonitor
from sentryfuse_ros.nodes.inference_node import InferenceNode
from sentryfuse_ros.nodes.lifecycle import run_nodes
from sentryfuse_ros.nodes.sensor_feed import FeedPool


def main(args: list[str] | None = None) -> int:
    feeds = FeedPool()
    try:
        return run_nodes([partial(HeartbeatMonitor, feeds=feeds), partial(InferenceNode, feeds=feeds)], args)
    finally:
        feeds.close()


if __name__ == "__main__":
    sys.exit(main())
