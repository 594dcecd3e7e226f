"""Offload across two hosts on one machine: the robot (inference_node, sensor_sim) and the base
station in two network namespaces joined by a veth pair (sentryfuse_ros/netns.py), discovery
SUBNET inside them only. The link is taken down for real (`ip link set ... down`): predictions
must go on, local only, and offload must resume when it comes back. Skips without root."""

from __future__ import annotations

import json
import sys
import time

import pytest

from conftest import REPO_ROOT, wait_for
from inference_rig import FAST_TICKS
from sentryfuse_ros.netns import BASE, ROBOT, NetnsPair, netns_unavailable
from test_offload import OFFLOAD_ALWAYS

PARAMS = str(REPO_ROOT / "config" / "sentryfuse.yaml")


class Recording:
    """What offload_recorder.py wrote: predictions and link states, with monotonic times."""

    def __init__(self, path):
        self.path = path

    def lines(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.endswith("}")]

    def predictions(self, origin: str, since: float = 0.0) -> list[dict]:
        return [line for line in self.lines() if line.get("origin") == origin and line["t"] >= since]

    def link(self) -> str | None:
        states = [line["link"] for line in self.lines() if "link" in line]
        return states[-1] if states else None


@pytest.mark.slow  # four processes in two namespaces, ~40 s
@pytest.mark.skipif(netns_unavailable() is not None, reason=f"{netns_unavailable()}")
def test_a_real_link_down_leaves_local_predictions_and_offload_resumes(tiny_weights, tmp_path):
    weights, gate = tiny_weights
    node = [sys.executable, "-m"]
    recording = Recording(tmp_path / "robot.jsonl")
    with NetnsPair() as pair:
        pair.popen(BASE, [*node, "sentryfuse_ros.nodes.base_station", "--ros-args", "--params-file", PARAMS,
                          "-p", f"weights_path:={weights}"], log_path=tmp_path / "base.log")
        pair.popen(ROBOT, [*node, "sentryfuse_ros.nodes.inference_node", "--ros-args", "--params-file", PARAMS,
                           "-p", f"weights_path:={weights}", "-p", f"gate_path:={gate}", *FAST_TICKS,
                           *OFFLOAD_ALWAYS], log_path=tmp_path / "inference.log")
        pair.popen(ROBOT, [*node, "sentryfuse_ros.nodes.sensor_sim", "--ros-args", "--params-file", PARAMS,
                           "-p", "source:=synthetic"], log_path=tmp_path / "sim.log")
        pair.popen(ROBOT, [sys.executable, str(REPO_ROOT / "test" / "offload_recorder.py"), str(recording.path), "300"],
                   log_path=tmp_path / "recorder.log")
        logs = lambda: "\n".join(f"--- {name}\n{(tmp_path / name).read_text()[-2500:]}"  # noqa: E731
                                 for name in ("inference.log", "base.log", "sim.log", "recorder.log"))

        assert wait_for(lambda: recording.predictions("remote"), 150.0, interval=0.5), logs()
        assert wait_for(lambda: recording.link() == "up", 20.0, interval=0.2), logs()

        pair.link(False)
        down_at = time.monotonic()
        assert wait_for(lambda: recording.link() == "down", 30.0, interval=0.2), logs()
        noticed_at = time.monotonic()
        time.sleep(2.0)
        assert len(recording.predictions("local", since=noticed_at)) >= 5, "local predictions must go on"
        assert not recording.predictions("remote", since=noticed_at + 0.5), "nothing crosses a link that is down"
        assert recording.predictions("local", since=down_at), logs()

        pair.link(True)
        up_at = time.monotonic()
        assert wait_for(lambda: recording.predictions("remote", since=up_at), 60.0, interval=0.2), logs()
        assert wait_for(lambda: recording.link() == "up", 20.0, interval=0.2), logs()
