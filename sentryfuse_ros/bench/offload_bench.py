"""`sentryfuse bench offload`: what a base station buys the robot at low power.

Each scenario is one run of the system as bringup starts it (sensor_sim replaying the test split
at the shipped rates, heartbeat_monitor and inference_node composed in `perception`), with the
simulated battery held at the low power level, on a ROS domain of its own:

- `local-unpruned`: no offload, the low level's plan at ratio 0 (the accuracy reference);
- `local`: no offload, the shipped low level (the CPU and latency reference);
- `offload-<N>ms`: a base station (the unpruned model) reached through a relay that adds N ms
  one way (nodes/link_relay.py: this kernel has no netem), speculative offload at low power;
- `drop-<N>ms`: as offload-N, with the link lost for --drop-s in the middle of the window: the
  relay is frozen (SIGSTOP: nothing crosses either way, as when a cable is pulled), then resumed.

The base station and the relay stand for other machines: their CPU is reported apart from the
robot's product CPU (the perception process). Per scenario: robot CPU, predictions local and
remote, the end-to-end latency of the first prediction per source stamp, live accuracy of the
samples played in the window; for drops, the longest gap between predictions during the drop
(against the one before it) and the time from the link's return to the first remote prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

from sentryfuse_ros.bench.monitor_bench import cpu_seconds
from sentryfuse_ros.bench.offload_figures import (Received, RunRecord, between, correct_in, cpu_cores,
                                                  first_per_stamp, longest_gap_s, pooled, resume_s)
from sentryfuse_ros.bench.ros_bench import BenchError, load_source, ratio_for
from sentryfuse_ros.launch_plan import source_config_dir
from sentryfuse_ros.nodes import inference_params, monitor_params, sim_params
from sentryfuse_ros.nodes.params import values_from_params_file
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
from sentryfuse_ros.nodes.power_policy import param_name
from sentryfuse_ros.ros_domain import use_own_domain
from sentryfuse_ros.process_control import stop_process

LEVEL = "low"
BASE_TOPICS = {"request": "base/offload/request", "reply": "base/offload/reply", "status": "base/offload/status"}
HEAR_BASE_TIMEOUT_S = 60.0  # the robot hears the base station through the relay within this
DURATIONS = {False: (60.0, 5.0), True: (25.0, 3.0)}  # (hold, settle) seconds; --quick
TARGETS = {
    "cpu_over_local_max": 0.5,  # offload-20ms robot CPU / local robot CPU
    "accuracy_below_unpruned_max_points": 1.0,  # offload-20ms live accuracy >= local-unpruned - 1
    "drop_gap_over_period_max": 1.0,  # at most one prediction period more than the longest gap before
    "resume_max_s": 2.0,
    "first_p99_over_local_max": 1.0,  # offload-100ms first-per-stamp p99 <= local p99
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latencies-ms", default="0,20,100", help="added one-way link latencies (offload scenarios)")
    parser.add_argument("--drop-latency-ms", type=float, default=20.0, help="link latency of the drop scenario")
    parser.add_argument("--drop-s", type=float, default=5.0, help="how long the link is lost in the drop scenario")
    parser.add_argument("--threshold", type=float, default=None,
                        help="offload.confidence_threshold (default: the parameter file's)")
    parser.add_argument("--quick", action="store_true", help="hold each scenario 25 s instead of 60 s")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each scenario, pooled (default 2: each run's sensors and ticks keep one phase, "
                             "which moves its latencies by tens of milliseconds)")
    parser.add_argument("--params-file", type=Path, default=source_config_dir() / "sentryfuse.yaml")
    parser.add_argument("--source", choices=("dataset", "synthetic"), default="dataset")
    parser.add_argument("--out", type=Path, default=Path("results/bench_offload"))
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        report = measure(args)
    except BenchError as error:
        print(f"sentryfuse bench offload: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else format_table(report))
    return 0 if all(report["meets"].values()) else 1


# --- scenarios ---------------------------------------------------------------------------------
def scenarios(latencies_ms: list[float], drop_latency_ms: float) -> list[dict]:
    """(name, offload, added latency, drop, ratio 0) of each run, references first."""
    runs = [{"name": "local-unpruned", "offload": False, "latency_ms": None, "drop": False, "unpruned": True},
            {"name": "local", "offload": False, "latency_ms": None, "drop": False, "unpruned": False}]
    runs += [{"name": f"offload-{ms:g}ms", "offload": True, "latency_ms": ms, "drop": False, "unpruned": False}
             for ms in latencies_ms]
    runs.append({"name": f"drop-{drop_latency_ms:g}ms", "offload": True, "latency_ms": drop_latency_ms, "drop": True,
                 "unpruned": False})
    return runs


def _latencies(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise BenchError(f"--latencies-ms: {error}") from error
    if any(value < 0 for value in values):
        raise BenchError("--latencies-ms must be >= 0")
    return values


def measure(args: argparse.Namespace) -> dict:
    hold_s, settle_s = DURATIONS[args.quick]
    if args.drop_s <= 0 or args.drop_s > hold_s - settle_s - 6:
        raise BenchError(f"--drop-s must be > 0 and leave 3 s of window on each side (window {hold_s - settle_s:g} s)")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise BenchError("--threshold must be in [0, 1]")
    if args.repeats < 1:
        raise BenchError("--repeats must be >= 1")
    sim_values = values_from_params_file(args.params_file, "sensor_sim", sim_params.PARAMS)
    source = load_source(args.source, sim_values)
    use_own_domain()
    workdir = Path(tempfile.mkdtemp(prefix="sentryfuse-bench-offload-"))
    plan = scenarios(_latencies(args.latencies_ms), args.drop_latency_ms)
    runs: dict[str, list[RunRecord]] = {scenario["name"]: [] for scenario in plan}
    for repeat in range(args.repeats):  # scenario after scenario, so that a drift in load hits all alike
        for scenario in plan:
            print(f"bench offload: {scenario['name']} (run {repeat + 1} of {args.repeats}) ...", file=sys.stderr,
                  flush=True)
            runs[scenario["name"]].append(_one_run(args, workdir / f"{scenario['name']}-{repeat}", scenario,
                                                   hold_s, settle_s, sim_values, source))
    results = {name: pooled(records, "perception") for name, records in runs.items()}
    report = {"level": LEVEL, "scenarios": results, "repeats": args.repeats, "hold_s": hold_s, "settle_s": settle_s,
              "drop_s": args.drop_s,
              "source": args.source, "cpu_count": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()], "targets": TARGETS, "workdir": str(workdir)}
    report["comparison"] = comparison(report)
    report["meets"] = meets(report["comparison"])
    _write_outputs(report, args.out)
    return report


def _run_params(args, scenario: dict, folder: Path) -> Path:
    """The parameter file of one run: the sim at the low level's charge, offload on or off."""
    from sentryfuse_ros.bench.power_bench import run_params
    from sentryfuse_ros.bench.power_levels import level_charge

    monitor_values = values_from_params_file(args.params_file, "heartbeat_monitor", monitor_params.PARAMS)
    charge = level_charge(LEVEL_NAMES.index(LEVEL), tuple(monitor_values["power.thresholds"]))
    inference = {param_name(LEVEL, "offload"): scenario["offload"]}
    if scenario["unpruned"]:
        inference[param_name(LEVEL, "prune_ratio")] = 0.0
    if args.threshold is not None:
        inference["offload.confidence_threshold"] = args.threshold
    shared = yaml.safe_load(args.params_file.read_text()) or {}
    params = run_params(shared, args.source, charge, robot=False, node_overrides={"inference_node": inference})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _base_processes(params_path: Path, latency_ms: float, folder: Path, undo: ExitStack) -> dict[str, subprocess.Popen]:
    """The base station (on the relay's far side) and the relay, started and stopped with `undo`."""
    from sentryfuse_ros.bringup import node_environment

    robot = {name: f"sentryfuse/offload/{name}" for name in BASE_TOPICS}
    routes = [f"{robot['request']}>{BASE_TOPICS['request']}>sentryfuse/msg/OffloadRequest",
              f"{BASE_TOPICS['reply']}>{robot['reply']}>sentryfuse/msg/Prediction",
              f"{BASE_TOPICS['status']}>{robot['status']}>sentryfuse/msg/BaseStationStatus"]
    commands = {
        "base_station": ["-m", "sentryfuse_ros.nodes.base_station", "--ros-args", "--params-file", str(params_path),
                         *(arg for name, topic in BASE_TOPICS.items() for arg in ("-p", f"{name}_topic:={topic}"))],
        "link_relay": ["-m", "sentryfuse_ros.nodes.link_relay", "--ros-args", "-p", f"routes:={json.dumps(routes)}",
                       "-p", f"latency_s:={latency_ms / 1000.0}"],
    }
    started = {}
    for name, command in commands.items():
        log = undo.enter_context(open(folder / f"{name}.log", "w"))
        process = subprocess.Popen([sys.executable, *command], stdout=log, stderr=subprocess.STDOUT,
                                   env=node_environment())
        undo.callback(stop_process, process)
        undo.callback(lambda p=process: os.kill(p.pid, signal.SIGCONT) if p.poll() is None else None)
        started[name] = process
    return started


def _one_run(args, folder: Path, scenario: dict, hold_s: float, settle_s: float, sim_values: dict, source) -> dict:
    from sentryfuse_ros.bench.plan_switch import SwitchTracker
    from sentryfuse_ros.bench.power_run import PowerObserver, running_system
    from sentryfuse_ros.bench.ros_observer import Topics
    from sentryfuse_ros.bench.sample_ledger import SampleLedger
    from sentryfuse_ros.bringup import BringupConfig

    params_path = _run_params(args, scenario, folder)
    node_values = values_from_params_file(params_path, "inference_node", inference_params.PARAMS)
    state_topic = values_from_params_file(params_path, "heartbeat_monitor", monitor_params.PARAMS)["state_topic"]
    topics = Topics(node_values["prediction_topic"], state_topic, sim_values["ground_truth_topic"])
    ledger = SampleLedger(sim_values["start_index"], len(source))
    received: list[Received] = []

    class OffloadObserver(PowerObserver):
        def _on_prediction(self, msg) -> None:
            super()._on_prediction(msg)
            received.append(Received(time.monotonic(), self.timings[-1].end_to_end_ms,
                                     msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, msg.origin,
                                     msg.inference_time_ms))

    config = BringupConfig(params_file=params_path, use_sim=True)
    with ExitStack() as undo:
        base = _base_processes(params_path, scenario["latency_ms"], folder, undo) if scenario["offload"] else {}
        session = undo.enter_context(running_system(
            config, lambda node: OffloadObserver(node, topics, ledger, SwitchTracker(ratio_for(node_values))),
            folder / "nodes.log", "bench_offload_observer"))
        observer = session.observer
        if not session.spin_until(lambda: observer.level == LEVEL_NAMES.index(LEVEL), time.monotonic() + 30.0):
            raise BenchError(f"{scenario['name']}: the low power level was never reported (logs: {folder})")
        if base and not session.spin_until(lambda: observer.inference.get("offload link") == "up",
                                           time.monotonic() + HEAR_BASE_TIMEOUT_S):
            raise BenchError(f"{scenario['name']}: the robot never heard the base station (logs: {folder})")
        session.spin_until(lambda: False, time.monotonic() + settle_s)
        start = session.mark()
        base_cpu_start = {name: cpu_seconds(p.pid) for name, p in base.items()}
        window_s = hold_s - settle_s
        drop = None
        if scenario["drop"]:
            drop = _drop_link(session, base["link_relay"], start.at, window_s, args.drop_s)
        session.spin_until(lambda: False, start.at + window_s)
        end = session.mark()
        base_cpu = {name: cpu_cores(base_cpu_start[name], cpu_seconds(p.pid), end.at - start.at)
                    for name, p in base.items()}
        diagnostics = dict(observer.inference)
    return _record(received, start, end, base_cpu, diagnostics, ledger, drop, node_values)


def _drop_link(session, relay: subprocess.Popen, start_at: float, window_s: float, drop_s: float) -> dict:
    """Freeze the relay for drop_s in the middle of the window; the times it went and came back."""
    lost_at = start_at + (window_s - drop_s) / 2
    session.spin_until(lambda: False, lost_at)
    os.kill(relay.pid, signal.SIGSTOP)
    lost_at = time.monotonic()
    session.spin_until(lambda: False, lost_at + drop_s)
    os.kill(relay.pid, signal.SIGCONT)
    return {"lost_at": lost_at, "back_at": time.monotonic()}


def _record(received, start, end, base_cpu, diagnostics, ledger, drop, node_values) -> RunRecord:
    seconds = end.at - start.at
    correct, samples = correct_in(ledger.score.scored, start.ros_ns, end.ros_ns)
    record = RunRecord(
        window_s=seconds, received=between(received, start.at, end.at),
        # Over the whole run, then the window: an answer in the window to a local prediction made
        # before it is not a first prediction.
        first=between(first_per_stamp(received), start.at, end.at),
        robot_cpu_core={name: cpu_cores(start.cpu_s[name], end.cpu_s[name], seconds) for name in start.cpu_s},
        base_cpu_core=base_cpu, correct=correct, samples=samples,
        diagnostics={key: value for key, value in diagnostics.items() if key.startswith(("offload", "cpu_ms", "plan"))},
    )
    if drop is not None:
        period_s = 1.0 / node_values[param_name(LEVEL, "rate_hz")]
        record.drop = {
            "longest_gap_during_s": longest_gap_s(received, drop["lost_at"], drop["back_at"]),
            "longest_gap_before_s": longest_gap_s(received, start.at, drop["lost_at"]),
            "prediction_period_s": period_s,
            "resume_s": resume_s(received, drop["back_at"]),
            "predictions_during": len(between(received, drop["lost_at"], drop["back_at"])),
            "remote_during": sum(r.origin == "remote" for r in between(received, drop["lost_at"] + 1.0,
                                                                        drop["back_at"])),
        }
    return record


# --- report ------------------------------------------------------------------------------------
def comparison(report: dict) -> dict:
    runs = report["scenarios"]
    local, unpruned = runs["local"], runs["local-unpruned"]
    out = {}
    for name, figures in runs.items():
        if not name.startswith(("offload-", "drop-")):
            continue
        row = {"cpu_over_local": _ratio(figures["robot_cpu_core"], local["robot_cpu_core"]),
               "accuracy_minus_unpruned": _difference(figures["accuracy"], unpruned["accuracy"]),
               "first_p99_over_local": _ratio(figures["first_per_stamp_ms"]["p99"], local["first_per_stamp_ms"]["p99"])}
        row["local_node_p99_over_local"] = _ratio(figures["local_node_ms"]["p99"], local["local_node_ms"]["p99"])
        if "drop" in figures:  # the worst of the runs
            gaps = [(d["longest_gap_during_s"] - d["longest_gap_before_s"]) / d["prediction_period_s"]
                    for d in figures["drop"]
                    if d["longest_gap_during_s"] is not None and d["longest_gap_before_s"] is not None]
            resumes = [d["resume_s"] for d in figures["drop"]]
            row["drop_extra_gap_periods"] = round(max(gaps), 2) if gaps else None
            row["resume_s"] = None if None in resumes else max(resumes)
        out[name] = row
    return out


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def _difference(a, b):
    return round(a - b, 1) if a is not None and b is not None else None


def meets(rows: dict) -> dict:
    """Each target against the scenario it names; a missing scenario or figure does not meet it."""
    offload20, offload100 = rows.get("offload-20ms", {}), rows.get("offload-100ms", {})
    drop = next((row for name, row in rows.items() if name.startswith("drop-")), {})

    def at_most(value, limit):
        return value is not None and value <= limit

    return {
        "cpu_at_20ms": at_most(offload20.get("cpu_over_local"), TARGETS["cpu_over_local_max"]),
        "accuracy_at_20ms": offload20.get("accuracy_minus_unpruned") is not None
        and offload20["accuracy_minus_unpruned"] >= -TARGETS["accuracy_below_unpruned_max_points"],
        "drop_no_gap": at_most(drop.get("drop_extra_gap_periods"), TARGETS["drop_gap_over_period_max"]),
        "drop_resume": at_most(drop.get("resume_s"), TARGETS["resume_max_s"]),
        "first_p99_at_100ms": at_most(offload100.get("first_p99_over_local"), TARGETS["first_p99_over_local_max"]),
    }


def format_table(report: dict) -> str:
    lines = [f"bench offload at {report['level']} power ({report['repeats']} x {report['hold_s']:g} s per scenario, "
             f"{report['cpu_count']} CPUs, load {report['load_average']})",
             f"{'scenario':<16} {'robot CPU':>9} {'base CPU':>9} {'local':>6} {'remote':>6} "
             f"{'first p50/p99 ms':>17} {'accuracy':>12}"]
    for name, f in report["scenarios"].items():
        base = sum(f["base_side_cpu_core"].values()) if f["base_side_cpu_core"] else 0.0
        first = f["first_per_stamp_ms"]
        accuracy = f"{f['accuracy']}% ({f['samples']})" if f["accuracy"] is not None else "-"
        lines.append(f"{name:<16} {f['robot_cpu_core']:>9.4f} {base:>9.4f} {f['predictions_local']:>6} "
                     f"{f['predictions_remote']:>6} {str(first['p50']) + ' / ' + str(first['p99']):>17} {accuracy:>12}")
        for d in f.get("drop", []):
            lines.append(f"  link lost {report['drop_s']:g} s: longest gap {d['longest_gap_during_s']} s (before: "
                         f"{d['longest_gap_before_s']} s), {d['predictions_during']} predictions meanwhile, "
                         f"first remote {d['resume_s']} s after the link came back")
    lines.append("comparison: " + json.dumps(report["comparison"]))
    lines.append("targets met: " + json.dumps(report["meets"]))
    return "\n".join(lines)


def _write_outputs(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report["json"] = str(out / "bench_offload.json")
    report["plot"] = str(_plot(report, out / "bench_offload.png"))
    Path(report["json"]).write_text(json.dumps(report, indent=2) + "\n")


def _plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["scenarios"])
    runs = report["scenarios"]
    figure, (cpu_axis, latency_axis, accuracy_axis) = plt.subplots(1, 3, figsize=(14, 4))
    cpu_axis.bar(names, [runs[n]["robot_cpu_core"] * 100 for n in names])
    cpu_axis.set_ylabel("robot product CPU, % of a core")
    latency_axis.bar(names, [runs[n]["first_per_stamp_ms"]["p99"] or 0 for n in names])
    latency_axis.set_ylabel("first prediction per stamp, p99 ms")
    accuracy_axis.bar(names, [runs[n]["accuracy"] or 0 for n in names])
    accuracy_axis.set_ylabel("live accuracy, %")
    for axis in (cpu_axis, latency_axis, accuracy_axis):
        axis.tick_params(axis="x", rotation=45)
    figure.suptitle(f"bench offload at {report['level']} power")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
