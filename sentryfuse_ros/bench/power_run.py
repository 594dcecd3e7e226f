"""The live part of `sentryfuse bench power`: start the system, hold each power level, and take a
mark (CPU of every process, the newest diagnostics, energy counters, how many predictions and
states had arrived) at both ends of each level's measuring window.

A mark is taken when inference_node's diagnostics arrive (1 Hz), so that the /proc window and
the node's own cumulative counters cover the same stretch of time; when none comes in time the
mark is taken anyway, without new counters.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray

from sentryfuse.msg import ModalityState, Prediction
from sentryfuse_ros.bench.monitor_bench import cpu_seconds
from sentryfuse_ros.bench.power_levels import LevelPlan, read_energy
from sentryfuse_ros.bench.ros_bench import BenchError
from sentryfuse_ros.bench.ros_observer import RosObserver
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.diagnostics import NAME_PREFIX
from sentryfuse_ros.nodes.qos import reliable_qos
from sentryfuse_ros.nodes.stamps import stamp_to_ns

INFERENCE_STATUS = NAME_PREFIX + "inference"
STARTUP_TIMEOUT_S = 180.0  # weights, every plan and the dataset, on 2 busy cores
LEVEL_TIMEOUT_S = 10.0  # battery jump -> ModalityState with the new level (battery at 1 Hz)
DIAGNOSTICS_WAIT_S = 1.5  # inference_node's diagnostics come at 1 Hz
END_MARGIN_S = 1.25  # a window's end is aimed this long before the next battery jump
SCORE_TAIL_S = 2.5  # after the last window: the sample playing then is scored at the next announcement


@dataclass
class Mark:
    at: float  # time.monotonic()
    ros_ns: int  # the bench node's clock, the one the sim stamps samples with
    cpu_s: dict[str, float]  # Bringup.processes key -> CPU seconds
    bench_cpu_s: float
    inference: dict[str, str]  # newest "sentryfuse: inference" KeyValues ({} if none yet)
    inference_stamp_s: float | None  # that DiagnosticArray's stamp
    sensors: dict[str, dict[str, str]]  # newest "sentryfuse: <sensor>" KeyValues of the monitor
    energy: dict | None
    predictions: int  # Predictions received so far
    states: int  # ModalityStates received so far


@dataclass
class LevelWindow:
    plan: LevelPlan
    start: Mark | None = None  # None: the level was never reached
    end: Mark | None = None


@dataclass
class LiveLevels:
    observer: "PowerObserver"
    windows: list[LevelWindow]
    cmdlines: dict[str, str]  # Bringup.processes key -> /proc/<pid>/cmdline


class PowerObserver(RosObserver):
    """RosObserver, plus every ModalityState's power level and live set, each Prediction's prune
    ratio, and the newest /diagnostics statuses of the inference node and the monitor."""

    def __init__(self, node, topics, ledger, switches):
        self.states: list[tuple[float, int, tuple[str, ...], float]] = []  # (monotonic, level, live, camera Hz)
        self.ratios: list[float] = []  # one per Prediction, in the order of self.timings
        self.inference: dict[str, str] = {}
        self.inference_stamp_s: float | None = None
        self.inference_count = 0
        self.sensors: dict[str, dict[str, str]] = {}
        super().__init__(node, topics, ledger, switches)
        self._diagnostics = node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable_qos(20))

    @property
    def level(self) -> int | None:
        return self.states[-1][1] if self.states else None

    def _on_prediction(self, msg: Prediction) -> None:
        super()._on_prediction(msg)
        self.ratios.append(round(float(msg.prune_ratio), 2))

    def _on_state(self, msg: ModalityState) -> None:
        super()._on_state(msg)
        self.states.append((time.monotonic(), msg.power_level, tuple(msg.live_modalities), msg.camera_rate_hz))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == INFERENCE_STATUS:
                self.inference, self.inference_stamp_s = values, stamp_to_ns(msg.header.stamp) / 1e9
                self.inference_count += 1
            elif status.name.startswith(NAME_PREFIX) and status.name[len(NAME_PREFIX):] in MODALITIES:
                self.sensors[status.name[len(NAME_PREFIX):]] = values


@dataclass
class _Session:
    node: object
    observer: PowerObserver
    bringup: object
    log_path: Path
    activated: float = 0.0

    def spin_until(self, done, deadline: float) -> bool:
        import rclpy

        while not done():
            exited = self.bringup.exited()
            if exited:
                raise BenchError(f"{exited} exited during the run; node logs: {self.log_path}")
            if time.monotonic() >= deadline:
                return False
            rclpy.spin_once(self.node, timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))
        return True

    def start_system(self) -> None:
        """Until inference_node is active and the monitor publishes, then activate the sim."""
        from sentryfuse_ros.nodes.lifecycle_client import configure_and_activate, is_active

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (self.observer.state_seen and is_active(self.node, "inference_node", min(max(0.0, deadline - time.monotonic()), 2.0))):
            if time.monotonic() >= deadline:
                raise BenchError(f"inference_node not active within {STARTUP_TIMEOUT_S:g} s; node logs: {self.log_path}")
            self.spin_until(lambda: False, min(deadline, time.monotonic() + 0.2))
        if not configure_and_activate(self.node, "sensor_sim", 30.0):
            raise BenchError(f"sensor_sim did not activate; node logs: {self.log_path}")
        self.activated = time.monotonic()  # the fault schedule's clock starts about now

    def mark(self) -> Mark:
        o = self.observer
        return Mark(
            at=time.monotonic(), ros_ns=self.node.get_clock().now().nanoseconds,
            cpu_s={name: cpu_seconds(process.pid) for name, process in self.bringup.processes.items()},
            bench_cpu_s=cpu_seconds(os.getpid()), inference=dict(o.inference), inference_stamp_s=o.inference_stamp_s,
            sensors={name: dict(values) for name, values in o.sensors.items()}, energy=read_energy(),
            predictions=len(o.timings), states=len(o.states),
        )

    def mark_with_diagnostics(self, deadline: float) -> Mark:
        seen = self.observer.inference_count
        self.spin_until(lambda: self.observer.inference_count > seen, deadline)
        return self.mark()

    def hold(self, plan: LevelPlan, settle_s: float) -> LevelWindow:
        """Wait for the level and a prediction made under it, settle, then measure until shortly
        before the next battery jump."""
        o = self.observer
        predictions_before = [0]

        def reached() -> bool:
            if o.level != plan.index:
                predictions_before[0] = len(o.timings)
                return False
            return len(o.timings) > predictions_before[0]

        level_end = self.activated + plan.end_s
        if not self.spin_until(reached, self.activated + plan.start_s + LEVEL_TIMEOUT_S):
            self.spin_until(lambda: False, level_end)
            return LevelWindow(plan)
        self.spin_until(lambda: False, time.monotonic() + settle_s)
        start = self.mark_with_diagnostics(time.monotonic() + DIAGNOSTICS_WAIT_S)
        end_target = level_end - END_MARGIN_S
        self.spin_until(lambda: False, end_target)
        end = self.mark_with_diagnostics(min(end_target + DIAGNOSTICS_WAIT_S, level_end - 0.1))
        return LevelWindow(plan, start, end)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@contextmanager
def running_system(config, make_observer, log_path: Path, node_name: str):
    """The system (Bringup of `config`, the sim waiting for activation) started, inference_node
    active and the sim activated; yields the _Session of a bench node `node_name` observing it
    with make_observer(node). Undone in reverse: the bench node, rclpy, then the nodes' processes."""
    import rclpy

    from sentryfuse_ros.bringup import Bringup

    with open(log_path, "w") as log, ExitStack() as undo:
        bringup = Bringup(config, output=log)
        undo.callback(bringup.stop)
        rclpy.init()
        undo.callback(rclpy.try_shutdown)
        node = rclpy.create_node(node_name)
        undo.callback(node.destroy_node)
        bringup.start()
        session = _Session(node, make_observer(node), bringup, log_path)
        session.start_system()
        yield session


def hold_levels(config, make_observer, plans: list[LevelPlan], settle_s: float, log_path: Path) -> LiveLevels:
    """Run the system through `plans`."""
    with running_system(config, make_observer, log_path, "bench_power_observer") as session:
        bringup = session.bringup
        windows = [session.hold(plan, settle_s) for plan in plans]
        session.spin_until(lambda: False, time.monotonic() + SCORE_TAIL_S)
        cmdlines = {name: _cmdline(process.pid) for name, process in bringup.processes.items()}
        return LiveLevels(session.observer, windows, cmdlines)
