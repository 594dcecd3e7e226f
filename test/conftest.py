"""Shared fixtures: every test run gets its own ROS_DOMAIN_ID and loopback-only discovery,
and processes started by a test are always stopped."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Set before anything imports rclpy: a unique domain per pytest run (so concurrent runs on
# one machine never hear each other) and discovery that never leaves loopback.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))


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
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)

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
