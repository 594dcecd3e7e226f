"""Offload on one machine: inference_node and base_station as processes over DDS, the test publishing
sensors like a robot. A frozen base station (SIGSTOP) is a lost link to the robot: no heartbeat,
no answer. Across two network namespaces with a real link: test_offload_netns.py."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from conftest import REPO_ROOT, TINY, save_with_gate, wait_for
from inference_rig import RATES, Predictions
from inference_rig import start as start_inference
from monitor_rig import MonitorRig
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.nodes.diagnostics import NAME_PREFIX
from sentryfuse_ros.nodes.qos import reliable_qos

# Every level the test can be at offloads every prediction (the tiny model is never confident).
OFFLOAD_ALWAYS = ("-p", "policy.full.offload:=true", "-p", "policy.normal.offload:=true",
                  "-p", "offload.confidence_threshold:=1.0")


class LinkState:
    """inference_node's newest `offload link` diagnostic."""

    def __init__(self, node):
        self.value = None
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable_qos(10))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == NAME_PREFIX + "inference":
                self.value = next((kv.value for kv in status.values if kv.key == "offload link"), self.value)


def start_base_station(processes, weights, *extra):
    return processes.start("-m", "sentryfuse_ros.nodes.base_station", "--ros-args",
                           "--params-file", str(REPO_ROOT / "config" / "sentryfuse.yaml"),
                           "-p", f"weights_path:={weights}", *extra, name="base_station")


def remote(predictions, since: int = 0):
    return [p for p in predictions.since(since) if p.origin == "remote"]


@pytest.mark.slow  # three processes over DDS, ~30 s
def test_answers_supersede_local_predictions_and_a_lost_link_leaves_no_gap(ros_node, processes, tiny_weights):
    weights, _ = tiny_weights
    base = start_base_station(processes, weights)
    inference = start_inference(processes, tiny_weights, *OFFLOAD_ALWAYS, monitor=False)
    rig, predictions, link = MonitorRig(ros_node), Predictions(ros_node), LinkState(ros_node)
    logs = lambda: f"inference:\n{processes.log(inference)[-3000:]}\nbase:\n{processes.log(base)[-3000:]}"  # noqa: E731

    assert rig.run(90.0, RATES, until=lambda: remote(predictions)), logs()
    answer = remote(predictions)[-1]
    local = [p for p in predictions.received if p.origin == "local" and p.header == answer.header]
    assert local, "a remote answer must share its source stamp and frame with a local prediction"
    # The same weights unpruned on both sides (the node's full/normal ratio is 0): float16 inputs
    # give the same answer.
    assert answer.plan_id == f"base {local[0].plan_id}"
    assert answer.class_id == local[0].class_id
    assert max(abs(a - b) for a, b in zip(answer.class_scores, local[0].class_scores)) < 0.02
    assert answer.live_modalities == local[0].live_modalities and answer.trigger == local[0].trigger
    assert rig.run(10.0, RATES, until=lambda: link.value == "up"), logs()

    os.kill(base.pid, signal.SIGSTOP)  # the link is lost
    try:
        lost = len(predictions.received)
        assert rig.run(30.0, RATES, until=lambda: link.value == "down"), logs()
        settled = len(predictions.received)
        rig.run(2.0, RATES)
        during = predictions.since(lost)
        assert sum(p.origin == "local" for p in predictions.since(settled)) >= 5, "local predictions must go on"
        assert not remote(predictions, settled), "nothing can come from a base station that is gone"
        assert len(during) > len(predictions.since(settled))
    finally:
        os.kill(base.pid, signal.SIGCONT)

    back = len(predictions.received)
    assert rig.run(30.0, RATES, until=lambda: remote(predictions, back)), logs()
    assert wait_for(lambda: link.value == "up", 10.0, spin=lambda: rig.run(0.2, RATES)), logs()


@pytest.mark.slow  # two processes over DDS
def test_a_base_station_of_another_task_is_not_used(ros_node, processes, tiny_weights, tmp_path):
    """The base station serves a digits model; a robot whose model names other classes (another
    task, though the tensors have the same shapes) hears it but never sends it anything."""
    other_task = replace(INPUT_SPEC, class_names=("left", "right", "stop"))
    backbone = SentryAttend(replace(TINY, input=other_task)).eval()
    other_weights, other_gate = save_with_gate(backbone, tmp_path / "other", tmp_path / "gate")
    weights, _ = tiny_weights
    base = start_base_station(processes, weights)
    inference = start_inference(processes, (other_weights, other_gate), *OFFLOAD_ALWAYS, monitor=False)
    rig, predictions, link = MonitorRig(ros_node), Predictions(ros_node), LinkState(ros_node)
    assert rig.run(90.0, RATES, until=lambda: link.value == "another task"), (
        f"{processes.log(inference)[-3000:]}\n{processes.log(base)[-2000:]}")
    assert rig.run(3.0, RATES, until=lambda: len(predictions.received) >= 10)
    assert not remote(predictions)
    assert all(p.label in other_task.class_names for p in predictions.received)
