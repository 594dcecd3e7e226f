"""`sentryfuse bench monitor`: dropout detection latency and CPU of heartbeat_monitor.

Starts heartbeat_monitor and sensor_sim as separate processes (on a random ROS domain, so a
running system on this machine is neither disturbed nor measured). The sim streams camera
15 Hz, IMU 100 Hz, audio 50 ms chunks and battery 1 Hz (the rates of config/sentryfuse.yaml),
healthy for --duration seconds, then drops each sensor --repeats times for --drop-s seconds.
This process listens to the sensor topics and to ModalityState:

- detection latency = receipt of the ModalityState saying the sensor died - receipt of that
  sensor's last message, per scheduled drop; target 2 x period + 50 ms;
- false dropout = a death outside a scheduled drop although the sensor's messages (by their
  header stamps) never paused for its timeout; a death where they did pause is a publisher
  stall (sensor_sim starved of CPU), reported separately: the monitor was right about it;
- CPU = the monitor process's user+system time over the healthy window (/proc/<pid>/stat),
  in % of one core.

`--composed` runs the monitor as bringup ships it: in the perception process with
inference_node (the shipped weights, predicting at 10 Hz), so detection is measured while the
process also predicts; the CPU figure is then the whole process's.

`--check-period S [S ...]` runs the whole measurement once per value with the monitor's
power.check_periods_s set to S at every power level (whatever battery the sim reports), and
prints the runs side by side: the monitor's CPU and detection latency at each check period.
At S > 0 the detection target is 2 x period + 50 ms + S (a dropout is seen within timeout + S).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import yaml
from sensor_msgs.msg import Image, Imu

from sentryfuse.msg import AudioChunk, ModalityState
from sentryfuse_ros.launch_plan import source_config_dir
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes import monitor_params, sim_params
from sentryfuse_ros.nodes.lifecycle_client import activate_remote
from sentryfuse_ros.nodes.params import values_from_params_file
from sentryfuse_ros.nodes.qos import latched_state_qos, sensor_qos
from sentryfuse_ros.ros_domain import use_own_domain
from sentryfuse_ros.process_control import stop_process

TARGET_MARGIN_S = 0.050
# Deep best-effort queues: this process must not lose the messages whose stamps it compares.
OBSERVER_QOS = sensor_qos("best_effort", depth=100)
STARTUP_TIMEOUT_S = 90.0
# Seconds after a drop ends that a death still belongs to it (the last frame can arrive late).
DROP_GRACE_S = 0.5
# Between drops: the recovery hysteresis (about 1 s) plus a settled second.
RECOVERY_ALLOWANCE_S = 2.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of healthy streams before the dropouts (600 for the 10-minute target)")
    parser.add_argument("--repeats", type=int, default=4, help="dropouts per sensor")
    parser.add_argument("--drop-s", type=float, default=1.0, help="length of each dropout")
    parser.add_argument("--composed", action="store_true",
                        help="run the monitor in the perception process with inference_node, as bringup does")
    parser.add_argument("--params-file", type=Path, default=source_config_dir() / "sentryfuse.yaml",
                        help="parameter YAML for both nodes")
    parser.add_argument("--source", choices=("synthetic", "dataset"), default="synthetic",
                        help="sensor_sim's data (dataset needs `sentryfuse data prepare`)")
    parser.add_argument("--check-period", type=float, nargs="+", metavar="S",
                        help="run once per value with power.check_periods_s = S at every power level, and compare "
                             "(e.g. --check-period 0 0.5); default: the parameter file's values")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table (a list of them with --check-period)")


@dataclass(frozen=True)
class Drop:
    sensor: str
    start: float  # seconds after sim activation
    end: float


def dropout_schedule(healthy_s: float, repeats: int, drop_s: float, stagger_s: float = 0.0) -> list[Drop]:
    """Drops of each sensor in turn after the healthy window, far enough apart to recover.

    stagger_s (a check period): each gap is lengthened by a different fraction of it (golden
    ratio steps), so the drops do not all fall at the same phase of the monitor's looks, which
    are that far apart, and the latencies sample the whole [timeout, timeout + period) range.
    """
    gap = drop_s + RECOVERY_ALLOWANCE_S
    drops, at = [], healthy_s
    for _ in range(repeats):
        for sensor in MODALITIES:
            drops.append(Drop(sensor, at, at + drop_s))
            at += gap + (len(drops) * 0.6180339887 % 1.0) * stagger_s
    return drops


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class SensorResult:
    sensor: str
    rate_hz: float
    timeout_ms: float
    target_ms: float
    drops: int
    latencies_ms: list[float] = field(default_factory=list)
    recoveries_s: list[float] = field(default_factory=list)

    @property
    def detected(self) -> int:
        return len(self.latencies_ms)

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {
            "sensor": self.sensor, "rate_hz": self.rate_hz, "timeout_ms": self.timeout_ms,
            "target_ms": round(self.target_ms, 1), "drops": self.drops, "detected": self.detected,
            "p50_ms": round(float(np.percentile(lat, 50, method="inverted_cdf")), 1),
            "p95_ms": round(float(np.percentile(lat, 95, method="inverted_cdf")), 1),
            "max_ms": round(float(lat.max()), 1),
            "recovery_p50_s": round(float(np.median(self.recoveries_s)), 2) if self.recoveries_s else None,
            "meets_target": self.detected == self.drops and bool(lat.max() <= self.target_ms),
        }


class Observer:
    """Listens to the sensors and ModalityState; keeps what the scoring needs, on time.monotonic()."""

    def __init__(self, node, monitor_values: dict):
        self.last_message = {s: None for s in MODALITIES}
        # per sensor: (receipt on time.monotonic(), header stamp in s)
        self.messages = {s: [] for s in MODALITIES}
        # per sensor: (receipt, alive, receipt of that sensor's last message before it)
        self.transitions = {s: [] for s in MODALITIES}
        self.alive = {s: False for s in MODALITIES}
        self.all_alive_at: float | None = None
        self.state_seen = False
        types = {"camera": Image, "imu": Imu, "audio": AudioChunk}
        self._subs = [
            node.create_subscription(types[s], monitor_values[f"{s}.topic"], self._sensor_callback(s), OBSERVER_QOS)
            for s in MODALITIES
        ]
        self._subs.append(node.create_subscription(
            ModalityState, monitor_values["state_topic"], self._on_state, latched_state_qos()))

    def _sensor_callback(self, sensor):
        def callback(msg):
            now = time.monotonic()
            self.last_message[sensor] = now
            self.messages[sensor].append((now, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))
        return callback

    def publisher_gap_s(self, sensor: str, around: float) -> float:
        """Longest pause between the sensor's header stamps received within a second of `around`."""
        stamps = sorted(stamp for receipt, stamp in self.messages[sensor] if abs(receipt - around) <= 1.0)
        return max((b - a for a, b in zip(stamps, stamps[1:])), default=float("inf"))

    def _on_state(self, msg) -> None:
        self.state_seen = True
        now = time.monotonic()
        for sensor in MODALITIES:
            alive = getattr(msg, f"{sensor}_alive")
            if alive != self.alive[sensor]:
                self.alive[sensor] = alive
                self.transitions[sensor].append((now, alive, self.last_message[sensor]))
        if self.all_alive_at is None and all(self.alive.values()):
            self.all_alive_at = now


@dataclass(frozen=True)
class UnscheduledDeath:
    sensor: str
    t: float  # seconds after the sim's activation
    publisher_gap_ms: float | None  # longest pause of the sensor's stamps around it; None: no messages
    in_healthy_window: bool
    false_alarm: bool  # the stream never paused for the timeout: the monitor was wrong


def score(observer: Observer, t0: float, drops: list[Drop], rates: dict, timeouts: dict,
          healthy: tuple[float, float], check_period_s: float = 0.0):
    """Per-sensor detection results, and every death outside the scheduled drops.

    t0 is the sim's activation on time.monotonic(), when the schedule's clock starts. With a
    check period the target is that much longer (a dropout is seen within timeout + period).
    """
    results = {s: SensorResult(s, rates[s], timeouts[s] * 1e3,
                               (2.0 / rates[s] + TARGET_MARGIN_S + check_period_s) * 1e3,
                               sum(d.sensor == s for d in drops)) for s in MODALITIES}
    unscheduled = []
    for sensor, transitions in observer.transitions.items():
        own = [d for d in drops if d.sensor == sensor]
        for when, alive, last_message in transitions:
            if alive:
                after = [d for d in own if t0 + d.end <= when < t0 + d.end + RECOVERY_ALLOWANCE_S]
                if after:
                    results[sensor].recoveries_s.append(when - (t0 + after[0].end))
                continue
            drop = next((d for d in own if t0 + d.start <= when < t0 + d.end + DROP_GRACE_S), None)
            if drop is not None and last_message is not None:
                results[sensor].latencies_ms.append((when - last_message) * 1e3)
            else:
                gap = observer.publisher_gap_s(sensor, when)
                gap_ms = None if math.isinf(gap) else round(gap * 1e3, 1)
                unscheduled.append(UnscheduledDeath(sensor, round(when - t0, 2), gap_ms,
                                                    healthy[0] <= when < healthy[1], gap < timeouts[sensor]))
    return results, unscheduled


def _start(module: str, log_path: Path, env: dict, *ros_args: str) -> subprocess.Popen:
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", module, "--ros-args", *ros_args],
                                stdout=log, stderr=subprocess.STDOUT, env=env)


def check_period_args(period_s: float | None) -> list[str]:
    """The monitor's --ros-args for one check period at every power level (none: as configured)."""
    if period_s is None:
        return []
    levels = ",".join(f"{period_s:.6f}" for _ in range(4))  # a dot in each: a double array
    return ["-p", f"power.check_periods_s:=[{levels}]"]


def run(args: argparse.Namespace) -> int:
    if args.duration <= 0 or args.repeats < 1 or args.drop_s <= 0:
        print("sentryfuse bench monitor: --duration and --drop-s must be > 0, --repeats >= 1", file=sys.stderr)
        return 2
    periods = args.check_period or [None]
    if any(not (math.isfinite(p) and 0 <= p <= 5) for p in periods if p is not None):
        print("sentryfuse bench monitor: --check-period values must be in [0, 5]", file=sys.stderr)
        return 2
    reports = []
    for period_s in periods:
        report = run_once(args, period_s)
        if isinstance(report, int):
            return report
        reports.append(report)
        if not args.json:
            print(format_table(report), flush=True)
    if args.json:
        print(json.dumps(reports[0] if args.check_period is None else reports))
    elif len(reports) > 1:
        print(format_comparison(reports))
    return 0 if all(r["meets_target"] for r in reports) else 1


def run_once(args: argparse.Namespace, check_period_s: float | None) -> dict | int:
    """One measurement; the report, or an exit status if the nodes did not run."""
    # A domain of its own: never hear (or disturb) a system already running on this machine.
    use_own_domain()
    env = dict(os.environ)
    monitor_values = values_from_params_file(args.params_file, "heartbeat_monitor", monitor_params.PARAMS)
    sim_values = values_from_params_file(args.params_file, "sensor_sim", sim_params.PARAMS)
    rates = {"camera": sim_values["camera.rate_hz"], "imu": sim_values["imu.rate_hz"],
             "audio": 1.0 / sim_values["audio.chunk_s"]}
    timeouts = {s: monitor_values[f"{s}.timeout_s"] for s in MODALITIES}
    # The schedule starts at the sim's activation; the healthy window once all sensors are alive.
    warmup_s = 3.0
    drops = dropout_schedule(warmup_s + args.duration, args.repeats, args.drop_s, check_period_s or 0.0)
    schedule = {"faults": [{"fault": "drop", "sensor": d.sensor, "at": d.start, "duration": args.drop_s}
                           for d in drops]}

    workdir = Path(tempfile.mkdtemp(prefix="sentryfuse-bench-monitor-"))
    schedule_path = workdir / "faults.yaml"
    schedule_path.write_text(yaml.safe_dump(schedule))
    params = ["--params-file", str(args.params_file)]
    module = "sentryfuse_ros.nodes.perception" if args.composed else "sentryfuse_ros.nodes.heartbeat_monitor"
    monitor = _start(module, workdir / "monitor.log", env, *params, *check_period_args(check_period_s))
    # The sim waits (autostart off) until the monitor is up, so the schedule's t=0 is known here.
    sim = _start("sentryfuse_ros.nodes.sensor_sim", workdir / "sim.log", env, *params, "-p", "autostart:=false",
                 "-p", f"source:={args.source}", "-p", f"fault_schedule:={schedule_path}")
    rclpy.init()
    node = rclpy.create_node("bench_monitor_observer")
    try:
        observer = Observer(node, monitor_values)
        startup_deadline = time.monotonic() + STARTUP_TIMEOUT_S

        def wait(condition) -> bool:
            while not condition():
                if time.monotonic() > startup_deadline or monitor.poll() is not None or sim.poll() is not None:
                    return False
                rclpy.spin_once(node, timeout_sec=0.05)
            return True

        t0 = (activate_remote(node, "/sensor_sim", max(0.0, startup_deadline - time.monotonic()))
              if wait(lambda: observer.state_seen) else None)
        if t0 is None or not wait(lambda: observer.all_alive_at is not None):
            print(f"sentryfuse bench monitor: nodes did not come up; logs in {workdir}", file=sys.stderr)
            return 2
        healthy_start = observer.all_alive_at + 1.0
        healthy_end = t0 + drops[0].start - 0.2
        if healthy_end - healthy_start < 0.5 * args.duration:
            print(f"sentryfuse bench monitor: start-up took too long for the healthy window; logs in {workdir}",
                  file=sys.stderr)
            return 2
        cpu_marks = {}
        end = t0 + drops[-1].end + RECOVERY_ALLOWANCE_S
        while time.monotonic() < end:
            now = time.monotonic()
            for name, at in (("start", healthy_start), ("end", healthy_end)):
                if name not in cpu_marks and now >= at:
                    cpu_marks[name] = (now, cpu_seconds(monitor.pid), cpu_seconds(sim.pid))
            if monitor.poll() is not None or sim.poll() is not None:
                print(f"sentryfuse bench monitor: a node exited early; logs in {workdir}", file=sys.stderr)
                return 2
            rclpy.spin_once(node, timeout_sec=0.02)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop_process(sim)
        stop_process(monitor)

    results, unscheduled = score(observer, t0, drops, rates, timeouts, (healthy_start, healthy_end),
                                 check_period_s or 0.0)
    false_alarms = [d for d in unscheduled if d.false_alarm]
    (w0, m0, s0), (w1, m1, s1) = cpu_marks["start"], cpu_marks["end"]
    report = {
        "healthy_s": round(w1 - w0, 1),
        "repeats": args.repeats,
        "drop_s": args.drop_s,
        "source": args.source,
        "composed": args.composed,
        "check_period_s": check_period_s,
        "sensors": [results[s].summary() for s in MODALITIES],
        "monitor_cpu_percent": round(100 * (m1 - m0) / (w1 - w0), 1),
        "sim_cpu_percent": round(100 * (s1 - s0) / (w1 - w0), 1),
        "false_dropouts_healthy": sum(d.in_healthy_window for d in false_alarms),
        "false_dropouts_total": len(false_alarms),
        "publisher_stalls_healthy": sum(d.in_healthy_window and not d.false_alarm for d in unscheduled),
        "publisher_stalls_total": sum(not d.false_alarm for d in unscheduled),
        "unscheduled_deaths": [asdict(d) for d in unscheduled],
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    report["meets_target"] = all(r["meets_target"] for r in report["sensors"]) and not false_alarms
    return report


def format_table(report: dict) -> str:
    head = (f"sentryfuse bench monitor: {report['healthy_s']} s of healthy streams, then {report['repeats']} "
            f"dropouts of {report['drop_s']} s per sensor ({report['source']} data)")
    if report.get("check_period_s") is not None:
        head += f", check period {report['check_period_s']:g} s at every power level"
    columns = ("sensor", "rate Hz", "timeout ms", "target ms", "detected", "p50 ms", "p95 ms", "max ms",
               "recovery s", "ok")
    rows = [(s["sensor"], f"{s['rate_hz']:g}", f"{s['timeout_ms']:.0f}", f"{s['target_ms']:.1f}",
             f"{s['detected']}/{s['drops']}", f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}", f"{s['max_ms']:.1f}",
             "-" if s["recovery_p50_s"] is None else f"{s['recovery_p50_s']:.2f}",
             "yes" if s["meets_target"] else "NO") for s in report["sensors"]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [head, "  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
    process = "perception process (monitor + inference_node)" if report.get("composed") else "monitor"
    lines.append(f"{process} CPU {report['monitor_cpu_percent']} % of one core, sensor_sim {report['sim_cpu_percent']} % "
                 f"({report['cpu_count']} cores, load average {report['load_average']})")
    lines.append(f"false dropouts (stream never paused for the timeout): {report['false_dropouts_healthy']} in the "
                 f"healthy window, {report['false_dropouts_total']} overall")
    lines.append(f"publisher stalls (sensor_sim paused >= timeout; reported dead, rightly): "
                 f"{report['publisher_stalls_healthy']} in the healthy window, {report['publisher_stalls_total']} overall")
    for d in report["unscheduled_deaths"]:
        kind = "FALSE DROPOUT" if d["false_alarm"] else "publisher stall"
        lines.append(f"  {kind}: {d['sensor']} at t={d['t']} s, longest stamp gap {d['publisher_gap_ms']} ms")
    lines.append("target met" if report["meets_target"] else "TARGET MISSED")
    return "\n".join(lines)


def format_comparison(reports: list[dict]) -> str:
    """The runs of --check-period side by side: CPU and detection latency per check period."""
    lines = ["check period vs CPU and detection (p50 / max ms per sensor)"]
    process = "process" if reports[0].get("composed") else "monitor"
    columns = ("check period s", f"{process} CPU %", *(s["sensor"] for s in reports[0]["sensors"]), "ok")
    rows = [(f"{r['check_period_s']:g}", f"{r['monitor_cpu_percent']}",
             *(f"{s['p50_ms']:.0f} / {s['max_ms']:.0f}" for s in r["sensors"]),
             "yes" if r["meets_target"] else "NO") for r in reports]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines.append("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
