"""Stopping a child process the one way every bench, test harness and the namespace pair do it."""

from __future__ import annotations

import subprocess

STOP_TIMEOUT_S = 5.0


def stop_process(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Terminate (SIGTERM: the nodes shut down cleanly), then kill if it does not go in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
