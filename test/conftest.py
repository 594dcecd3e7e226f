"""Shared fixtures: every test run gets its own ROS_DOMAIN_ID and loopback-only discovery,
processes started by a test are always stopped, a test's own rclpy node (`ros_node`), tiny
model configs (`from conftest import TINY`) and a tiny backbone with its gate (`tiny_weights`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentryfuse_ros.model.config import SentryAttendConfig
from sentryfuse_ros.process_control import stop_process
from sentryfuse_ros.ros_domain import fresh_domain_id

REPO_ROOT = Path(__file__).resolve().parents[1]

# Set before anything imports rclpy: a unique domain per pytest run (so concurrent runs on
# one machine never hear each other) and discovery that never leaves loopback.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(fresh_domain_id()))

# Tiny SentryAttend configs: fast to build, same code paths as the shipped model.
TINY = SentryAttendConfig(d_model=32, n_layers=2, n_heads=4, n_kv_groups=2, head_dim=8, ffn_dim=32, dropout=0.0)
# Narrower, with an FFN width that is not a power of two (checkpoint and model shape checks).
NARROW = SentryAttendConfig(d_model=16, n_layers=2, n_heads=4, n_kv_groups=2, head_dim=4, ffn_dim=24, dropout=0.0)
# One layer of two heads sharing one K/V group: the fastest to train.
ONE_LAYER = SentryAttendConfig(d_model=16, n_layers=1, n_heads=2, n_kv_groups=1, head_dim=8, ffn_dim=16, dropout=0.0)


class ProcessGroup:
    """Starts Python processes for a test and guarantees they are gone afterwards."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self, *args: str, name: str = "proc") -> subprocess.Popen:
        log_path = self.log_dir / f"{name}-{len(self.processes)}.log"
        log = open(log_path, "w")
        process = subprocess.Popen(
            [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=REPO_ROOT
        )
        self.processes.append((process, log_path))
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 5.0) -> None:
        stop_process(process, timeout)

    def log(self, process: subprocess.Popen) -> str:
        for candidate, path in self.processes:
            if candidate is process:
                return path.read_text()
        raise KeyError("process not started by this group")

    def stop_all(self) -> None:
        for process, _ in self.processes:
            self.stop(process)


@pytest.fixture
def processes(tmp_path):
    group = ProcessGroup(tmp_path)
    yield group
    group.stop_all()


def wait_for(predicate, timeout: float, interval: float = 0.05, spin=None) -> bool:
    """Poll `predicate` (spinning `spin()` in between if given) for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if spin is not None:
            spin()
        else:
            time.sleep(interval)
    return bool(predicate())


@pytest.fixture
def ros_node(request):
    """rclpy initialised for one test, and a node of the test's own to publish, subscribe and call
    services with."""
    import rclpy

    rclpy.init()
    node = rclpy.create_node(f"{request.module.__name__}_node")
    yield node
    node.destroy_node()
    rclpy.shutdown()


def must_call(node, service_type, service: str, request, timeout: float = 10.0):
    """The service's response; fails the test if it is not there or does not answer in time."""
    from sentryfuse_ros.nodes.lifecycle_client import call_service

    response = call_service(node, service_type, service, request, timeout)
    assert response is not None, f"{service} did not answer within {timeout:g} s"
    return response


def kept_counts(plan) -> tuple[int, int]:
    """(heads, FFN channels) a PrunePlan keeps over all layers."""
    return sum(len(l.kept_heads) for l in plan.layers), sum(len(l.kept_channels) for l in plan.layers)


def save_with_gate(backbone, weights_stem: Path, gate_stem: Path | None = None) -> tuple[Path, Path]:
    """Save `backbone` and a random gate registered to it (at gate_stem, else beside the weights):
    (weights path, gate path)."""
    from sentryfuse_ros.model.checkpoint import backbone_sha256, save_checkpoint
    from sentryfuse_ros.model.gate_checkpoint import gate_beside, save_gate
    from sentryfuse_ros.model.sentry_gate import SentryGate
    from sentryfuse_ros.pruning.gate_training import gate_config_for

    weights = save_checkpoint(backbone, weights_stem)
    gate = save_gate(SentryGate(gate_config_for(backbone, hidden=16)), gate_stem or gate_beside(weights),
                     backbone_sha256(weights))
    return weights, gate


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A random tiny backbone and a gate registered to it: fast to load, same code paths as the
    shipped weights (weights path, gate path)."""
    from sentryfuse_ros.model import SentryAttend

    folder = tmp_path_factory.mktemp("weights")
    return save_with_gate(SentryAttend(TINY).eval(), folder / "tiny", folder / "gate")


def from_bag_args(bags, name, *options):
    """`sentryfuse data from-bag` arguments as its parser makes them."""
    import argparse

    from sentryfuse_ros.bags import dataset as bag_dataset

    parser = argparse.ArgumentParser()
    bag_dataset.configure_parser(parser)
    return parser.parse_args([*map(str, bags), "--name", str(name), *options])
