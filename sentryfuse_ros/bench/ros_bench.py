"""`sentryfuse bench ros`: the whole system over DDS, measured from outside the nodes.

Starts heartbeat_monitor, inference_node and sensor_sim through Bringup (use_sim, the shared
config/sentryfuse.yaml, so the sim runs at the monitor's rates: camera 15 Hz, IMU 100 Hz, audio
50 ms chunks, one sample every 2 s) on a random ROS domain of its own, with the bench fault
schedule (config/faults/bench.yaml: camera and audio drops, a battery drain) repeated over the
run. sensor_sim is activated only once inference_node is active, so the whole run is measured.
This process subscribes Prediction, ModalityState and ground truth and reports:

- end-to-end latency: Prediction receipt - its header stamp (newest sensor stamp used), with the
  node's own inference_time_ms beside it;
- plan switch: PlanCache.get of a cached plan in process (the target), and ModalityState change
  -> first Prediction from the new plan over ROS;
- CPU of each node process (/proc/<pid>/stat) from the first Prediction to the end, % of one core;
- accuracy: live per-sample accuracy (a sample is scored by its last prediction) against the
  same plans run offline on the same test samples.

After the live run, the in-process figures are taken with the nodes stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sentryfuse_ros.launch_plan import source_config_dir
from sentryfuse_ros.nodes import inference_params, monitor_params, sim_params
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
from sentryfuse_ros.nodes.power_policy import PowerPolicy
from sentryfuse_ros.nodes.params import values_from_params_file
from sentryfuse_ros.ros_domain import use_own_domain

TARGETS = {"latency_p99_ms": 20.0, "plan_switch_p99_ms": 1.0, "accuracy_points": 1.0}
# Loading trained weights and building every plan, on 2 cores that may be busy.
STARTUP_TIMEOUT_S = 180.0
CACHED_SWITCHES = 20000


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=300.0,
                        help="seconds of simulated sensors (one test sample per 2 s: 300 s scores ~150 samples; "
                             "fewer make the 1-point accuracy comparison meaningless)")
    parser.add_argument("--source", choices=("dataset", "synthetic"), default="dataset",
                        help="sensor_sim's data: the prepared test split (`sentryfuse data prepare`) or synthetic "
                             "stand-ins")
    parser.add_argument("--weights", default="", help="SentryAttend checkpoint (default: the shipped one)")
    parser.add_argument("--gate", default="", help="SentryGate checkpoint for those weights (default: the shipped one)")
    parser.add_argument("--fault-schedule", type=Path, default=source_config_dir() / "faults" / "bench.yaml",
                        help="fault schedule for sensor_sim, replayed every --repeat-every seconds")
    parser.add_argument("--repeat-every", type=float, default=60.0, help="period of the fault schedule's replay")
    parser.add_argument("--params-file", type=Path, default=source_config_dir() / "sentryfuse.yaml",
                        help="parameter YAML for every node")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


class BenchError(RuntimeError):
    """The run cannot produce figures; the message says why and where the node logs are."""


@dataclass
class LiveRun:
    observer: object  # ros_observer.RosObserver
    cpu_window_s: float
    cpu_percent: dict[str, float]
    bench_cpu_percent: float
    load_average: list[float]  # at the end of the live run, when the nodes were still running


def load_source(name: str, sim_values: dict):
    """What sensor_sim will replay, loaded here too so the offline side sees the same samples."""
    from sentryfuse_ros.nodes.sim_sources import SyntheticSource

    if name == "synthetic":
        return SyntheticSource(sim_values["synthetic_samples"])
    from sentryfuse_ros.data.dataset import load_split

    try:
        return load_split(sim_values["split"])
    except Exception as error:  # the dataset says what is missing
        raise BenchError(f"sensor_sim needs the prepared {sim_values['split']!r} split ({error}); run "
                         "`sentryfuse data prepare` first, or use --source synthetic") from error


def ratio_for(values: dict):
    """power level -> prune ratio, as inference_node with these parameter values maps it."""
    policy = PowerPolicy.from_values(values)
    return lambda power_level: policy.at(power_level).prune_ratio


def observe_live_system(config, observer_factory, duration_s: float, log_path: Path) -> LiveRun:
    """Start the nodes, activate the sim once inference_node is active, listen for duration_s."""
    import rclpy

    from sentryfuse_ros.bench.monitor_bench import cpu_seconds
    from sentryfuse_ros.bringup import Bringup
    from sentryfuse_ros.nodes.lifecycle_client import configure_and_activate, is_active

    with open(log_path, "w") as log:
        bringup = Bringup(config, output=log)
        rclpy.init()
        node = None
        try:
            node = rclpy.create_node("bench_ros_observer")
            bringup.start()
            observer = observer_factory(node)

            def check_nodes(phase: str) -> None:
                exited = bringup.exited()
                if exited:
                    raise BenchError(f"{exited} exited {phase}; node logs: {log_path}")

            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            def inference_active() -> bool:
                return is_active(node, "inference_node", min(max(0.0, deadline - time.monotonic()), 2.0))

            while not (observer.state_seen and inference_active()):
                check_nodes("during start-up")
                if time.monotonic() > deadline:
                    raise BenchError(f"inference_node not active within {STARTUP_TIMEOUT_S:g} s; node logs: {log_path}")
                rclpy.spin_once(node, timeout_sec=0.2)
            if not configure_and_activate(node, "sensor_sim", 30.0):
                raise BenchError(f"sensor_sim did not activate; node logs: {log_path}")
            end = time.monotonic() + duration_s
            first = None
            while time.monotonic() < end:
                check_nodes("during the run")
                if first is None and observer.first_prediction_at is not None:
                    first = _cpu_mark(bringup, cpu_seconds)
                rclpy.spin_once(node, timeout_sec=0.05)
            if first is None:
                raise BenchError(f"no Prediction in {duration_s:g} s; node logs: {log_path}")
            last = _cpu_mark(bringup, cpu_seconds)
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
            bringup.stop()
    window = last[0] - first[0]
    percent = {name: round(100 * (last[1][name] - first[1][name]) / window, 1) for name in first[1]}
    return LiveRun(observer, round(window, 1), {n: percent[n] for n in bringup.processes}, percent["bench"],
                   [round(x, 2) for x in last[2]])


def _cpu_mark(bringup, cpu_seconds) -> tuple[float, dict[str, float], tuple[float, ...]]:
    seconds = {name: cpu_seconds(process.pid) for name, process in bringup.processes.items()}
    seconds["bench"] = cpu_seconds(os.getpid())
    return time.monotonic(), seconds, os.getloadavg()


def run(args: argparse.Namespace) -> int:
    try:
        report = measure(args)
    except BenchError as error:
        print(f"sentryfuse bench ros: {error}", file=sys.stderr)
        return 2
    from sentryfuse_ros.bench.ros_bench_report import format_table

    print(json.dumps(report) if args.json else format_table(report))
    return 0 if report["meets_target"] else 1


def measure(args: argparse.Namespace) -> dict:
    if args.duration <= 0 or args.repeat_every <= 0:
        raise BenchError("--duration and --repeat-every must be > 0")
    from sentryfuse_ros.bench.plan_switch import SwitchTracker, time_cached_switches
    from sentryfuse_ros.bench.ros_bench_report import distribution
    from sentryfuse_ros.bench.ros_bench_setup import write_run_files
    from sentryfuse_ros.bench.ros_observer import RosObserver, Topics
    from sentryfuse_ros.bench.sample_ledger import SampleLedger
    from sentryfuse_ros.bringup import BringupConfig, BringupError
    from sentryfuse_ros.model.checkpoint import CheckpointError, shipped_checkpoint
    from sentryfuse_ros.model.gate_checkpoint import shipped_gate
    from sentryfuse_ros.pruning.plan_cache import load_plan_cache

    sim_values = values_from_params_file(args.params_file, "sensor_sim", sim_params.PARAMS)
    node_values = values_from_params_file(args.params_file, "inference_node", inference_params.PARAMS)
    monitor_values = values_from_params_file(args.params_file, "heartbeat_monitor", monitor_params.PARAMS)
    source = load_source(args.source, sim_values)
    try:  # before any node starts: unusable weights fail here, with the node's own message
        # The node's runtime, so the cold plan build below is the node's (offline replay runs plan.model).
        cache = load_plan_cache(args.weights, args.gate, node_values["runtime"], node_values["num_threads"])
    except CheckpointError as error:
        raise BenchError(f"{error} (pass --weights and --gate, or train the shipped ones)") from error

    workdir = Path(tempfile.mkdtemp(prefix="sentryfuse-bench-ros-"))
    try:
        params_path, schedule_path = write_run_files(workdir, args.params_file, args.fault_schedule, args.source,
                                                     args.repeat_every, args.duration)
        config = BringupConfig(params_file=params_path, use_sim=True, weights=args.weights, gate=args.gate,
                               fault_schedule=str(schedule_path))
        config.validate()
    except (ValueError, OSError, BringupError) as error:
        raise BenchError(str(error)) from error
    # A domain of its own: never hear (or disturb) another system or test run on this machine.
    use_own_domain()

    ledger = SampleLedger(sim_values["start_index"], len(source))
    switches = SwitchTracker(ratio_for(node_values))
    topics = Topics(node_values["prediction_topic"], monitor_values["state_topic"], sim_values["ground_truth_topic"])
    log_path = workdir / "nodes.log"
    live = observe_live_system(config, lambda node: RosObserver(node, topics, ledger, switches), args.duration,
                               log_path)

    # In process, nodes stopped: the switch itself, then the offline side of the accuracy check.
    ratios = PowerPolicy.from_values(node_values).planned_ratios()
    cached_get_s = time_cached_switches(cache, ratios, CACHED_SWITCHES)
    accuracy = _accuracy_check(args.source, source, cache, ledger)
    report = {
        "source": args.source,
        "weights": str(Path(args.weights) if args.weights else shipped_checkpoint()),
        "gate": str(Path(args.gate) if args.gate else shipped_gate()),
        "duration_s": args.duration,
        "inference_rate_hz": {name: level.rate_hz for name, level in
                              zip(LEVEL_NAMES, PowerPolicy.from_values(node_values).levels)},
        "fault_schedule": str(args.fault_schedule),
        **_latency_figures(live.observer.timings),
        "plan_switch": {
            "cached_get_ms": distribution([s * 1e3 for s in cached_get_s]),
            "plan_build_max_ms": round(max(plan.build_ms for plan in cache.plans()), 2),
            "over_ros_ms": distribution([s * 1e3 for s in switches.latencies_s]),
            "over_ros_superseded": switches.superseded,
        },
        "sensor_rates_hz": _sensor_rates(live.observer.sensor_rates_hz, sim_values),
        "cpu_window_s": live.cpu_window_s,
        "cpu_percent": live.cpu_percent,
        "bench_cpu_percent": live.bench_cpu_percent,
        "accuracy": accuracy,
        "targets": TARGETS,
        "cpu_count": os.cpu_count(),
        "load_average": live.load_average,
        "node_log": str(log_path),
    }
    report["meets"] = {
        "latency": report["latency_ms"]["count"] > 0 and report["latency_ms"]["p99"] <= TARGETS["latency_p99_ms"],
        "plan_switch": report["plan_switch"]["cached_get_ms"]["p99"] <= TARGETS["plan_switch_p99_ms"],
        "accuracy": (accuracy["samples"] > 0 and accuracy["label_mismatches"] == 0
                     and abs(accuracy["difference_points"]) <= TARGETS["accuracy_points"]),
    }
    report["meets_target"] = all(report["meets"].values())
    return report


def _sensor_rates(measured: dict[str, list[float]], sim_values: dict) -> dict:
    from sentryfuse_ros.bench.ros_bench_report import rate_summary

    nominal = {"camera": sim_values["camera.rate_hz"], "imu": sim_values["imu.rate_hz"],
               "audio": 1.0 / sim_values["audio.chunk_s"]}
    return {name: rate_summary(rates, nominal[name] * sim_values["rate_scale"]) for name, rates in measured.items()}


def _latency_figures(timings) -> dict:
    from sentryfuse_ros.bench.ros_bench_report import distribution

    by_live_set: dict[str, list[float]] = {}
    for timing in timings:
        by_live_set.setdefault(timing.live_set, []).append(timing.end_to_end_ms)
    return {
        "predictions": len(timings),
        "latency_ms": distribution([t.end_to_end_ms for t in timings]),
        "latency_by_live_set_ms": {name: distribution(v) for name, v in sorted(by_live_set.items())},
        "inference_time_ms": distribution([t.inference_ms for t in timings]),
        "latency_outside_inference_ms": distribution([t.end_to_end_ms - t.inference_ms for t in timings]),
    }


def _accuracy_check(source_name: str, source, cache, ledger) -> dict:
    """Live accuracy against the same plans run offline on the same samples."""
    from sentryfuse_ros.bench import offline_replay, paired_accuracy

    samples = ledger.scored_samples()
    indices = [s.index for s in samples]
    if source_name == "dataset":
        inputs, source_labels = offline_replay.dataset_inputs(source, indices)
    else:
        inputs, source_labels = offline_replay.synthetic_inputs(source, indices)
    try:
        offline = offline_replay.offline_labels(cache, samples, inputs)
    except offline_replay.PlanMismatch as error:
        raise BenchError(f"{error}: the bench and inference_node did not load the same weights and gate") from error
    return {**paired_accuracy.compare(samples, offline, source_labels), "samples_played": len(ledger.score.truths)}
