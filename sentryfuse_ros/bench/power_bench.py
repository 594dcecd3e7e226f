"""`sentryfuse bench power`: CPU, latency and live accuracy of the whole system at each power level.

The system runs as a robot runs it: Bringup with use_sim (sensor_sim replaying the test split at
the shipped rates: camera 15 Hz 28x28 mono8, IMU 100 Hz, 50 ms audio chunks at 16 kHz, a sample
every 2 s) on a ROS domain of its own. The simulated battery holds each power level in turn for
--hold seconds: the sim starts at the first level's charge and a fault schedule written for the
run (battery_jump events only, no sensor fault) moves it to the middle of each next level's band
(heartbeat_monitor's power.thresholds). A level's measuring window starts --settle seconds after
ModalityState reports the level and a prediction was made under it, and ends shortly before the
next jump. Per level: CPU cores of every process (/proc/<pid>/stat) with the simulator apart and
"product" = the rest, CPU per prediction, predictions per second, live accuracy (a sample is
scored by its last prediction; samples played wholly inside the window), end-to-end latency
(Prediction receipt - header stamp), inference_node's CPU breakdown from its diagnostics
counters, and energy where powercap counters are readable.

Policies, side by side in one invocation (--policies): `shipped` (the parameter file's power
policy), `pruning-only` (every level at full's rate, trigger `rate`, nothing shed, the monitor
checking at each sensor's timeout: what a level bought before the power policy) and
`change-at-full` (the shipped policy with trigger `change` at full: forwards per sample against
the rate trigger). Per level also: predictions per sample and the delay from a sample's onset
to its first correct prediction.

--robot-rates adds a run at full power with a robot's streams: 640x480 bgr8 camera at 30 Hz
(best effort), IMU at 200 Hz, 48 kHz 2-channel audio, with the monitor expecting those rates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from sentryfuse_ros.bench.power_figures import (TARGETS, cpu_ratio, figures_of, frames_received, meets, notes,
                                                policy_comparison)
from sentryfuse_ros.bench.ros_bench import BenchError, load_source, ratio_for
from sentryfuse_ros.launch_plan import params_key, source_config_dir
from sentryfuse_ros.nodes import inference_params, monitor_params, sim_params
from sentryfuse_ros.nodes.lifecycle import EXECUTORS
from sentryfuse_ros.nodes.params import values_from_params_file
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
from sentryfuse_ros.nodes.sensor_feed import INGESTION_MODES
from sentryfuse_ros.ros_domain import use_own_domain

# The robot's streams (sensor_sim parameters) and what the monitor then expects.
ROBOT_SIM = {"camera.rate_hz": 30.0, "camera.width": 640, "camera.height": 480, "camera.encoding": "bgr8",
             "imu.rate_hz": 200.0, "audio.sample_rate": 48000, "audio.channels": 2}
# (hold, settle, robot hold) seconds: a full run, and --quick (under 3 minutes with start-up).
DURATIONS = {False: (60.0, 5.0, 60.0), True: (25.0, 3.0, 25.0)}
MIN_WINDOW_S = 3.0  # hold - settle - level change - end margin must leave this much
POLICIES = ("shipped", "pruning-only", "change-at-full")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"{DURATIONS[True][0]:g} s per level and {DURATIONS[True][1]:g} s settling "
                             f"(default {DURATIONS[False][0]:g} s and {DURATIONS[False][1]:g} s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--robot-rates", action="store_true",
                        help="also run at full power with a robot's streams (640x480 bgr8 camera at 30 Hz, IMU 200 Hz, "
                             "48 kHz stereo audio)")
    parser.add_argument("--out", type=Path, default=Path("results/bench_power"),
                        help="folder for bench_power.json and the CPU vs accuracy plot")
    parser.add_argument("--levels", default=",".join(LEVEL_NAMES),
                        help="power levels to hold, in this order (comma-separated)")
    parser.add_argument("--hold", type=float, default=None, help="seconds each level is held")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds skipped after each level change before measuring")
    parser.add_argument("--robot-hold", type=float, default=None,
                        help="seconds of the --robot-rates run (default: as --hold, or 60 s / 25 s with --quick)")
    parser.add_argument("--source", choices=("dataset", "synthetic"), default="dataset",
                        help="sensor_sim's data: the prepared test split or synthetic stand-ins")
    parser.add_argument("--weights", default="", help="SentryAttend checkpoint (default: the shipped one)")
    parser.add_argument("--gate", default="", help="SentryGate checkpoint for those weights (default: the shipped one)")
    parser.add_argument("--params-file", type=Path, default=source_config_dir() / "sentryfuse.yaml",
                        help="parameter YAML for every node")
    parser.add_argument("--ingestion", choices=tuple(INGESTION_MODES), default=None,
                        help="override both nodes' ingestion (default: as in the parameter file)")
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help="override both nodes' executor (default: as in the parameter file)")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help=f"power policies to run, comma-separated, from {', '.join(POLICIES)}")
    parser.add_argument("--separate-processes", action="store_true",
                        help="run heartbeat_monitor and inference_node as a process each (bringup composed:=false), "
                             "so each node's CPU is measured on its own")


def run(args: argparse.Namespace) -> int:
    try:
        report = measure(args)
    except (BenchError, ValueError) as error:
        print(f"sentryfuse bench power: {error}", file=sys.stderr)
        return 2
    from sentryfuse_ros.bench.power_report import format_table

    print(json.dumps(report) if args.json else format_table(report))
    return 0 if report["meets_target"] else 1


# --- parameters of a run -------------------------------------------------------------------------
def _set(section: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        section = section.setdefault(name, {})
    section[leaf] = value


def robot_monitor_overrides(sim: dict) -> dict:
    """What heartbeat_monitor expects of the robot's streams: their rates, the shipped timeout rule
    (2 periods + 30 ms), about a second of messages to recover, and the published audio rate."""
    rates = {"camera": sim["camera.rate_hz"], "imu": sim["imu.rate_hz"]}
    overrides = {"audio.sample_rate": sim["audio.sample_rate"]}
    for sensor, rate in rates.items():
        overrides |= {f"{sensor}.expected_rate_hz": rate, f"{sensor}.timeout_s": round(2 / rate + 0.03, 4),
                      f"{sensor}.recover_messages": int(rate)}
    return overrides


def policy_overrides(policy: str, node_values: dict) -> dict[str, dict]:
    """Per node, the parameters that turn the parameter file's power policy into `policy`."""
    from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
    from sentryfuse_ros.nodes.power_policy import param_name

    if policy == "shipped":
        return {}
    if policy == "change-at-full":
        return {"inference_node": {param_name("full", "trigger"): "change"}}
    if policy == "pruning-only":
        full_rate = node_values[param_name("full", "rate_hz")]
        inference = {}
        for level in LEVEL_NAMES:
            inference |= {param_name(level, "rate_hz"): full_rate, param_name(level, "trigger"): "rate",
                          param_name(level, "shed"): ""}
        return {"inference_node": inference, "heartbeat_monitor": {"power.check_periods_s": [0.0] * len(LEVEL_NAMES)}}
    raise BenchError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")


def run_params(shared: dict, source: str, initial_charge: float, robot: bool,
               node_overrides: dict[str, dict] | None = None) -> dict:
    """The shared parameters, with the sim replaying `source`, waiting for the bench's activation,
    starting at `initial_charge`; with `robot`, publishing (and the monitor expecting) the robot's
    streams; `node_overrides` {node name: {parameter: value}} on top."""
    from sentryfuse_ros.bench.ros_bench_setup import bench_params

    params = bench_params(shared, source)
    for node, overrides in (node_overrides or {}).items():
        section = params.setdefault(params_key(node), {}).setdefault("ros__parameters", {})
        for name, value in overrides.items():
            _set(section, name, value)
    sim = params[params_key("sensor_sim")]["ros__parameters"]
    _set(sim, "battery.initial", initial_charge)
    if robot:
        monitor = params.setdefault(params_key("heartbeat_monitor"), {}).setdefault("ros__parameters", {})
        for name, value in ROBOT_SIM.items():
            _set(sim, name, value)
        for name, value in robot_monitor_overrides(ROBOT_SIM).items():
            _set(monitor, name, value)
    return params


# --- one live run --------------------------------------------------------------------------------
def _live_run(args, folder: Path, plans, settle_s: float, robot: bool, sim_values: dict, source, policy: str = "shipped"):
    """Start the system with these plans' battery, hold them, return the LiveLevels and the ledger."""
    from sentryfuse_ros.bench.plan_switch import SwitchTracker
    from sentryfuse_ros.bench.power_levels import battery_schedule
    from sentryfuse_ros.bench.power_run import PowerObserver, hold_levels
    from sentryfuse_ros.bench.ros_observer import Topics
    from sentryfuse_ros.bench.sample_ledger import SampleLedger
    from sentryfuse_ros.bringup import BringupConfig, BringupError

    folder.mkdir(parents=True, exist_ok=True)
    shared = yaml.safe_load(args.params_file.read_text()) or {}
    params_path, schedule_path = folder / "params.yaml", folder / "battery.yaml"
    both = {name: value for name, value in (("ingestion", args.ingestion), ("executor", args.executor)) if value}
    overrides = policy_overrides(policy, values_from_params_file(args.params_file, "inference_node",
                                                                 inference_params.PARAMS))
    overrides = {node: both | overrides.get(node, {}) for node in ("heartbeat_monitor", "inference_node")}
    params_path.write_text(yaml.safe_dump(run_params(shared, args.source, plans[0].charge, robot, overrides),
                                          sort_keys=False))
    schedule_path.write_text(yaml.safe_dump(battery_schedule(plans), sort_keys=False))
    config = BringupConfig(params_file=params_path, use_sim=True, composed=not args.separate_processes,
                           weights=args.weights, gate=args.gate, fault_schedule=str(schedule_path))
    try:
        config.validate()
    except BringupError as error:
        raise BenchError(str(error)) from error
    node_values = values_from_params_file(params_path, "inference_node", inference_params.PARAMS)
    monitor_values = values_from_params_file(params_path, "heartbeat_monitor", monitor_params.PARAMS)
    ledger = SampleLedger(sim_values["start_index"], len(source))
    topics = Topics(node_values["prediction_topic"], monitor_values["state_topic"], sim_values["ground_truth_topic"])
    switches = SwitchTracker(ratio_for(node_values))
    log_path = folder / "nodes.log"
    live = hold_levels(config, lambda node: PowerObserver(node, topics, ledger, switches), plans, settle_s, log_path)
    return live, ledger, log_path


# --- the command ---------------------------------------------------------------------------------
def _durations(args) -> tuple[float, float, float]:
    hold, settle, robot_hold = DURATIONS[args.quick]
    hold = hold if args.hold is None else args.hold
    settle = settle if args.settle is None else args.settle
    robot_hold = (hold if args.hold is not None else robot_hold) if args.robot_hold is None else args.robot_hold
    from sentryfuse_ros.bench.power_run import END_MARGIN_S

    for name, seconds in (("--hold", hold), ("--robot-hold", robot_hold)):
        if seconds - settle - END_MARGIN_S - 1.0 < MIN_WINDOW_S:
            raise BenchError(f"{name} {seconds:g} s leaves no {MIN_WINDOW_S:g} s window after {settle:g} s settling")
    if settle < 0:
        raise BenchError("--settle must be >= 0")
    return hold, settle, robot_hold


def measure(args: argparse.Namespace) -> dict:
    from sentryfuse_ros.bench.power_levels import POWERCAP, level_plans, read_energy

    hold, settle, robot_hold = _durations(args)
    levels = [name.strip() for name in args.levels.split(",") if name.strip()]
    monitor_values = values_from_params_file(args.params_file, "heartbeat_monitor", monitor_params.PARAMS)
    thresholds, hysteresis = tuple(monitor_values["power.thresholds"]), monitor_values["power.hysteresis"]
    plans = level_plans(levels, hold, thresholds, hysteresis)
    if len(set(levels)) != len(levels):
        raise BenchError(f"--levels names a level twice: {levels}")
    sim_values = values_from_params_file(args.params_file, "sensor_sim", sim_params.PARAMS)
    source = load_source(args.source, sim_values)
    # A domain of its own: never hear (or disturb) another system or test run on this machine.
    use_own_domain()
    workdir = Path(tempfile.mkdtemp(prefix="sentryfuse-bench-power-"))

    policies = [name.strip() for name in args.policies.split(",") if name.strip()]
    unknown = [name for name in policies if name not in POLICIES]
    if unknown or not policies:
        raise BenchError(f"--policies: unknown {unknown or 'none given'}; expected some of {', '.join(POLICIES)}")
    by_policy, logs, inference_key = {}, {}, None
    for policy in policies:
        policy_plans = level_plans(["full"], hold, thresholds, hysteresis) if policy == "change-at-full" else plans
        live, ledger, log_path = _live_run(args, workdir / policy, policy_plans, settle, False, sim_values, source,
                                           policy)
        by_policy[policy], inference_key = figures_of(live, ledger, sim_values["sample_period_s"])
        logs[policy] = str(log_path)
    per_level = by_policy.get("shipped") or by_policy[policies[0]]
    robot = None
    if args.robot_rates:
        robot_plans = level_plans(["full"], robot_hold, thresholds, hysteresis)
        live, ledger, logs["robot_rates"] = _live_run(args, workdir / "robot", robot_plans, settle, True, sim_values,
                                                      source)
        robot_levels, _ = figures_of(live, ledger, sim_values["sample_period_s"])
        robot = robot_levels["full"]
        robot["frames_received_fraction"], robot["frames_received_from"] = frames_received(
            robot, ROBOT_SIM["camera.rate_hz"])
        robot["streams"] = dict(ROBOT_SIM)
        logs["robot_rates"] = str(logs["robot_rates"])

    report = {
        "levels": per_level,
        "policy": "shipped" if "shipped" in by_policy else policies[0],
        "policies": {name: levels for name, levels in by_policy.items()},
        "comparison": policy_comparison(by_policy),
        "critical_over_full_cpu": cpu_ratio(per_level, "critical", "full"),
        **({"robot_rates": robot} if robot is not None else {}),
        "source": args.source,
        "hold_s": hold,
        "settle_s": settle,
        "robot_hold_s": robot_hold if args.robot_rates else None,
        "battery_charges": {plan.name: plan.charge for plan in plans},
        "process_keys": sorted(live.cmdlines),
        "inference_process": inference_key,
        "power_counters": "powercap energy_uj" if read_energy() else f"no power counters (no readable {POWERCAP})",
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "targets": TARGETS,
        "node_logs": logs,
    }
    report["meets"] = meets(report)
    report["meets_target"] = all(report["meets"].values())
    report["notes"] = notes(report)
    _write_outputs(report, args.out)
    return report


def _write_outputs(report: dict, out: Path) -> None:
    from sentryfuse_ros.bench.power_report import plot

    out.mkdir(parents=True, exist_ok=True)
    report["plot"] = str(plot(report, out / "bench_power.png"))
    report["json"] = str(out / "bench_power.json")
    Path(report["json"]).write_text(json.dumps(report, indent=2) + "\n")
