"""The discovery-server option of the README (networks without multicast): the base station and a
robot-side listener that both use `sentryfuse discovery-server` find each other; a process that
does not use it never hears them."""

from __future__ import annotations

import socket

import pytest

from conftest import REPO_ROOT, wait_for

LISTENER = """
import sys, time, rclpy
from sentryfuse.msg import BaseStationStatus
from sentryfuse_ros.nodes.qos import offload_qos
rclpy.init()
node = rclpy.create_node("discovery_listener")
heard = []
node.create_subscription(BaseStationStatus, "sentryfuse/offload/status", heard.append, offload_qos())
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline and not heard:
    rclpy.spin_once(node, timeout_sec=0.1)
print("heard" if heard else "silence", flush=True)
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # four processes over DDS
def test_nodes_find_each_other_through_the_discovery_server(processes, monkeypatch, tiny_weights):
    port = free_udp_port()
    server = processes.start("-m", "sentryfuse_ros.cli", "discovery-server", "--address", "127.0.0.1",
                             "--port", str(port), name="server")
    assert wait_for(lambda: "Server started" in processes.log(server), 30.0), processes.log(server)
    monkeypatch.setenv("ROS_DISCOVERY_SERVER", f"127.0.0.1:{port}")
    weights, _ = tiny_weights
    base = processes.start("-m", "sentryfuse_ros.nodes.base_station", "--ros-args", "--params-file",
                           str(REPO_ROOT / "config" / "sentryfuse.yaml"), "-p", f"weights_path:={weights}",
                           name="base_station")
    client = processes.start("-c", LISTENER, "60", name="client")
    assert wait_for(lambda: client.poll() is not None, 90.0)
    assert processes.log(client).strip().endswith("heard"), (processes.log(client), processes.log(base)[-2000:])
    # The base station is publishing now; plain discovery (which finds a local peer within a
    # second or two) hears nothing of it.
    monkeypatch.delenv("ROS_DISCOVERY_SERVER")
    outsider = processes.start("-c", LISTENER, "5", name="outsider")
    assert wait_for(lambda: outsider.poll() is not None, 90.0)
    assert processes.log(outsider).strip().endswith("silence"), processes.log(outsider)


def test_a_bad_port_is_a_clear_error():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "discovery-server", "--port", "0"],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2 and "--port must be 1..65535" in result.stderr
