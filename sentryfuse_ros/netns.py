"""A robot and a base station on one machine, in two network namespaces joined by a veth pair,
so that a test or bench can take the link between them down for real (`NetnsPair.link(False)`).

This kernel has no netem qdisc, so latency and random loss are simulated by the link_relay node;
an outage, though, is better real: DDS then loses its peers the way it would over Wi-Fi. The
veth is created inside the namespaces and only it is ever taken down, never a host interface.
Needs root and iproute2's `ip`; `netns_unavailable()` says why not where they are missing.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
from pathlib import Path

from sentryfuse_ros.process_control import stop_process

ROBOT = "robot"
BASE = "base"
SIDES = (ROBOT, BASE)

# Discovery must leave each namespace's loopback to find the other side over the veth; nothing
# else is reachable from inside the namespaces, so SUBNET stays on this machine.
SUBNET_ENV = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
# /dev/shm is not separated by network namespaces, so DDS shared memory could carry traffic past a
# veth that is down. Measured with these wheels (Fast DDS 3.2.2): it does not; a shared-memory
# locator names its host by a hash of the host's IPv4 addresses, which differ between the two
# namespaces, so they talk UDP over the veth and a link down stops delivery. UDPv4 only on the
# base side makes that hold by construction, whatever a future Fast DDS takes for "same host"
# (it already reads /etc/machine-id, which the namespaces share); processes within the robot side
# keep shared memory, those within the base side use UDP, which keeps working while the link is
# down.
SIDE_ENV = {ROBOT: {}, BASE: {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}}

_pair_numbers = itertools.count()


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@functools.cache
def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here (for pytest.skip), or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"sfprobe{os.getpid()}"
    added = _ip("netns", "add", probe)
    if added.returncode != 0:
        return f"`ip netns add` failed: {added.stderr.strip() or added.returncode}"
    _ip("netns", "del", probe)
    return None


class NetnsPair:
    """Two namespaces (ROBOT, BASE) joined by a veth pair on 10.231.x.0/24, `lo` and veth up.

    A context manager: leaving it stops the processes it started and deletes both namespaces
    (which destroys the veth), also after an exception.
    """

    def __init__(self):
        number = next(_pair_numbers)
        pid = os.getpid()
        self.namespaces = {ROBOT: f"sfrobot{pid}_{number}", BASE: f"sfbase{pid}_{number}"}
        # Interface names have at most 15 characters; pid_max is 7 digits.
        self.veths = {ROBOT: f"sfr{pid}_{number}", BASE: f"sfb{pid}_{number}"}
        # The addresses exist only inside the namespaces, so they cannot clash with anything;
        # x from the pid tells the pairs of parallel runs apart in logs and captures.
        subnet = f"10.231.{pid % 256}"
        self.addresses = {ROBOT: f"{subnet}.1", BASE: f"{subnet}.2"}
        self._processes: list[subprocess.Popen] = []
        self._created: list[str] = []
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _run(self, *args: str) -> None:
        result = _ip(*args)
        if result.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")

    def _create(self) -> None:
        for side in SIDES:
            self._run("netns", "add", self.namespaces[side])
            self._created.append(self.namespaces[side])
        self._run("link", "add", self.veths[ROBOT], "netns", self.namespaces[ROBOT], "type", "veth",
                  "peer", "name", self.veths[BASE], "netns", self.namespaces[BASE])
        for side in SIDES:
            namespace, veth = self.namespaces[side], self.veths[side]
            self._run("-n", namespace, "addr", "add", f"{self.addresses[side]}/24", "dev", veth)
            self._run("-n", namespace, "link", "set", "lo", "up")
        self.link(True)

    def _multicast_route(self, side: str) -> None:
        # The namespaces have no default route; without a multicast route DDS participants in
        # them never discovered each other (30 s). The kernel deletes it when the veth goes down.
        self._run("-n", self.namespaces[side], "route", "replace", "224.0.0.0/4", "dev", self.veths[side])

    def __enter__(self) -> NetnsPair:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def command(self, side: str, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        """argv run inside `side`'s namespace with SUBNET discovery, the side's transport
        settings (SIDE_ENV) and `env` added to the caller's environment."""
        settings = {**SUBNET_ENV, **SIDE_ENV[side], **(env or {})}
        return ["ip", "netns", "exec", self.namespaces[side], "env",
                *(f"{key}={value}" for key, value in settings.items()), *argv]

    def popen(self, side: str, argv: list[str], env: dict[str, str] | None = None,
              log_path: Path | None = None) -> subprocess.Popen:
        """Start argv in `side`'s namespace (see `command`), stdout and stderr to log_path if
        given; close() stops it."""
        log = open(log_path, "w") if log_path is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(self.command(side, argv, env), stdout=log, stderr=subprocess.STDOUT)
        finally:
            if log_path is not None:
                log.close()  # the child holds its own copy
        self._processes.append(process)
        return process

    def link(self, up: bool) -> None:
        """Take the veth up or down at both ends; up restores the multicast route, which the kernel
        deleted when it went down."""
        for side in SIDES:
            self._run("-n", self.namespaces[side], "link", "set", self.veths[side], "up" if up else "down")
            if up:
                self._multicast_route(side)

    def close(self) -> None:
        """Stop the started processes and delete both namespaces; safe to call again."""
        for process in self._processes:
            stop_process(process)
        self._processes.clear()
        while self._created:
            _ip("netns", "del", self._created.pop())
