"""`sentryfuse bringup`: start the SentryFuse nodes without ros2launch (pip-only environment).

It reads the same node list (sentryfuse_ros.launch_plan) and the same parameter YAML as
`ros2 launch sentryfuse bringup.launch.py`, and accepts the same `name:=value` launch
arguments plus ROS-style remaps (`--remap /camera/image:=/front/image`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentryfuse_ros.launch_plan import (LAUNCH_ARGUMENTS, ROLES, NodeSpec, fastdds_profile, processes,
                                        source_config_dir)

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


class BringupError(ValueError):
    """A launch argument or the parameter file is unusable; the message says which and why."""


@dataclass
class BringupConfig:
    namespace: str = ""
    role: str = "robot"
    params_file: Path = field(default_factory=lambda: source_config_dir() / "sentryfuse.yaml")
    use_sim: bool = False
    composed: bool = True
    weights: str = ""
    gate: str = ""
    fault_schedule: str = ""
    log_level: str = "info"
    remaps: list[str] = field(default_factory=list)

    @classmethod
    def from_launch_arguments(cls, values: dict[str, str], remaps: list[str]) -> "BringupConfig":
        known = {argument.name for argument in LAUNCH_ARGUMENTS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BringupError(f"unknown launch argument(s) {unknown}; known: {sorted(known)}")
        config = cls(remaps=list(remaps))
        config.namespace = values.get("namespace", "")
        if config.namespace and not config.namespace.startswith("/"):
            config.namespace = "/" + config.namespace
        config.role = values.get("role", "robot")
        if values.get("params_file"):
            config.params_file = Path(values["params_file"])
        config.use_sim = _parse_bool("use_sim", values.get("use_sim", "false"))
        config.composed = _parse_bool("composed", values.get("composed", "true"))
        config.weights = values.get("weights", "")
        config.gate = values.get("gate", "")
        config.fault_schedule = values.get("fault_schedule", "")
        config.log_level = values.get("log_level", "info").lower()
        config.validate()
        return config

    def validate(self) -> None:
        if self.role not in ROLES:
            raise BringupError(f"role '{self.role}' is not one of {ROLES}")
        if self.log_level not in LOG_LEVELS:
            raise BringupError(f"log_level '{self.log_level}' is not one of {LOG_LEVELS}")
        for path_name in ("weights", "gate", "fault_schedule"):
            value = getattr(self, path_name)
            if value and not Path(value).is_file():
                raise BringupError(f"{path_name} file not found: {value}")
        for remap in self.remaps:
            source, separator, target = remap.partition(":=")
            if not separator or not source or not target:
                raise BringupError(f"remap '{remap}' is not of the form old:=new")
        _check_params_file(self.params_file)

    def nodes(self) -> list[NodeSpec]:
        return processes(False, self.use_sim, self.role)

    def processes(self) -> list[NodeSpec]:
        return processes(self.composed, self.use_sim, self.role)

    def command(self, spec: NodeSpec) -> list[str]:
        """The `python -m` command line of one process, with the same ROS arguments launch_ros would pass."""
        ros_args = ["--ros-args"]
        if not spec.hosts:  # a composed process's nodes keep their own names
            ros_args += ["-r", f"__node:={spec.name}"]
        ros_args += ["--params-file", str(self.params_file)]
        if self.namespace:
            ros_args += ["-r", f"__ns:={self.namespace}"]
        if spec.takes_weights and self.weights:
            ros_args += ["-p", f"weights_path:={self.weights}"]
        if spec.takes_weights and self.gate:
            ros_args += ["-p", f"gate_path:={self.gate}"]
        if spec.sim_only and self.fault_schedule:
            ros_args += ["-p", f"fault_schedule:={self.fault_schedule}"]
        for remap in self.remaps:
            ros_args += ["-r", remap]
        ros_args += ["--log-level", self.log_level]
        return [sys.executable, "-m", spec.module, *ros_args]


def node_environment() -> dict[str, str]:
    """This environment, plus the shipped Fast DDS profile for large frames unless one is set."""
    env = dict(os.environ)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(fastdds_profile()))
    return env


def _parse_bool(name: str, text: str) -> bool:
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise BringupError(f"{name} must be true or false, got '{text}'")


def _check_params_file(path: Path) -> None:
    if not path.is_file():
        raise BringupError(f"params_file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise BringupError(f"params_file {path} is not valid YAML: {error}") from error
    if not isinstance(content, dict) or not all(
        isinstance(section, dict) and "ros__parameters" in section for section in content.values()
    ):
        raise BringupError(f"params_file {path} is not a ROS parameter file (node: {{ros__parameters: ...}})")


class Bringup:
    """Runs the processes of the launch plan, prefixes their output, and stops them all together."""

    def __init__(self, config: BringupConfig, output=sys.stdout):
        self.config = config
        self.output = output
        self.processes: dict[str, subprocess.Popen] = {}
        self._print_lock = threading.Lock()

    def start(self) -> None:
        for spec in self.config.processes():
            process = subprocess.Popen(
                self.config.command(spec), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                env=node_environment(),
            )
            self.processes[spec.name] = process
            threading.Thread(target=self._relay, args=(spec.name, process), daemon=True).start()

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            with self._print_lock:
                print(f"[{name}] {line}", end="", file=self.output, flush=True)

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def wait(self, duration_s: float | None) -> int:
        """Until a node exits, the duration passes, or Ctrl-C; returns the exit status for the CLI."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while deadline is None or time.monotonic() < deadline:
                exited = self.exited()
                if exited:
                    for name, code in exited.items():
                        print(f"[bringup] {name} exited with status {code}; stopping the others", file=self.output)
                    return 1
                time.sleep(0.1)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()

    def stop(self, timeout_s: float = 5.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)


def parse_launch_arguments(words: list[str]) -> dict[str, str]:
    values = {}
    for word in words:
        name, separator, value = word.partition(":=")
        if not separator or not name:
            raise BringupError(f"launch argument '{word}' is not of the form name:=value")
        values[name] = value
    return values


def configure_parser(parser: argparse.ArgumentParser) -> None:
    described = "; ".join(f"{a.name} (default '{a.default}'): {a.description}" for a in LAUNCH_ARGUMENTS)
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help=f"launch arguments: {described}")
    parser.add_argument("--remap", action="append", default=[], metavar="OLD:=NEW", help="topic remap for every node")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--print-commands", action="store_true", help="print each node's command line and exit")


def run(args: argparse.Namespace) -> int:
    try:
        config = BringupConfig.from_launch_arguments(parse_launch_arguments(args.arguments), args.remap)
    except BringupError as error:
        print(f"sentryfuse bringup: {error}", file=sys.stderr)
        return 2
    if args.print_commands:
        for spec in config.processes():
            print(" ".join(config.command(spec)))
        return 0
    bringup = Bringup(config)
    bringup.start()
    return bringup.wait(args.duration)
