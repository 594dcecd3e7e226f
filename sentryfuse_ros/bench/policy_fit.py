"""`sentryfuse policy fit`: choose each power level's policy by measurement.

1. Offline, the stream replay (bench/stream_replay.py): sensor_sim's streams of the first
   --samples test samples through inference_node's own decisions (PredictionLoop) for each
   candidate behaviour, every prediction's inputs then run through the plans of each prune
   ratio: accuracy (a sample scored by the prediction in force at its end, as live),
   predictions per sample and onset -> first correct prediction, deterministic and paired (every
   candidate sees the same samples). Also a sweep of change.follow_up_s at full, and the
   accuracy of all three modalities and of each pair on the whole split (the value table).
2. Live: the system as bringup runs it (sensor_sim replaying the test split at the shipped
   rates, battery full) while the command sets inference_node's full-power policy to each
   candidate behaviour in turn (rate 10/5/2 Hz x trigger rate/change x shed none/imu/imu+audio/
   audio, at prune ratio 0.4; heartbeat_monitor's check period paired with the rate,
   policy_choice.Behaviour.check_period_s) and measures the product's CPU (every process but
   the simulator), predictions per second and the onset -> first correct prediction delay.
3. policy_choice: candidates = behaviours x ratios, accuracy and onset from (1), CPU from (2); the Pareto
   front, each level's pick by its rule, the modality value table (accuracy each modality adds
   given the others against its CPU) and the parameter-file block of the chosen policy.

The ratio changes only the forward (~1 ms of a prediction here), so CPU is measured at one ratio
and used for all four: a candidate's CPU is then off by at most a few tenths of a millisecond
per prediction. Live accuracy of a few samples per window would be noise: the replay is the
accuracy figure; `sentryfuse bench power` measures the chosen policy end to end.
Output: results/policy_fit/{policy_fit.json, policy_fit.png, policy.yaml}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from sentryfuse_ros.bench.policy_choice import (RATIOS, Behaviour, behaviours, candidates, choose, config_block,
                                                modality_values, pareto_front)
from sentryfuse_ros.bench.ros_bench import BenchError
from sentryfuse_ros.launch_plan import params_key, source_config_dir
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.power_policy import param_name

MEASURE_RATIO = 0.4
DURATIONS = {False: (4.0, 16.0), True: (3.0, 8.0)}  # (settle, window) seconds per behaviour


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="8 s per candidate instead of 16 s")
    parser.add_argument("--out", type=Path, default=Path("results/policy_fit"))
    parser.add_argument("--params-file", type=Path, default=source_config_dir() / "sentryfuse.yaml")
    parser.add_argument("--weights", default="", help="SentryAttend checkpoint (default: the shipped one)")
    parser.add_argument("--gate", default="", help="SentryGate checkpoint for those weights (default: the shipped one)")
    parser.add_argument("--samples", type=int, default=1000, help="test samples the stream replay plays (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")


def run(args: argparse.Namespace) -> int:
    try:
        report = fit(args)
    except (BenchError, ValueError) as error:
        print(f"sentryfuse policy fit: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else summary(report))
    return 0


# --- offline -----------------------------------------------------------------------------------
FOLLOW_UPS_S = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def load_cache(weights: str, gate: str):
    from sentryfuse_ros.model.checkpoint import backbone_sha256, load_checkpoint, shipped_checkpoint
    from sentryfuse_ros.model.gate_checkpoint import load_gate, shipped_gate
    from sentryfuse_ros.pruning.plan_cache import PlanCache

    weights_path = Path(weights) if weights else shipped_checkpoint()
    backbone = load_checkpoint(weights_path).model
    gate_model = load_gate(Path(gate) if gate else shipped_gate(), expected_backbone_sha256=backbone_sha256(weights_path)).gate
    return PlanCache(backbone, gate_model, runtime="eager")


def split_accuracy(cache) -> dict[tuple[tuple[str, ...], float], float]:
    """% correct of the unpruned plans of all three modalities and of each pair on the whole test
    split (the tensors offline evaluation uses): what each modality adds given the others."""
    import torch

    from sentryfuse_ros.data.dataset import load_split

    split = load_split("test")
    tensors, labels = split.tensors(), torch.as_tensor(split.labels)
    subsets = [MODALITIES, *(tuple(m for m in MODALITIES if m != name) for name in MODALITIES)]
    table = {}
    with torch.inference_mode():
        for subset in subsets:
            plan, correct = cache.get(subset, 0.0), 0
            for start in range(0, len(labels), 500):
                batch = {name: tensors[name][start:start + 500] for name in subset}
                correct += int((plan.model(batch).argmax(-1) == labels[start:start + 500]).sum())
            table[(subset, 0.0)] = round(100 * correct / len(labels), 2)
    return table


def replayed(cache, samples: int, follow_up_s: float) -> tuple[dict, list[dict]]:
    """{(behaviour, ratio): replay score} for every candidate, and the follow-up sweep at full."""
    import torch

    from sentryfuse_ros.bench.stream_replay import SAMPLE_PERIOD_S, score, sim_messages
    from sentryfuse_ros.modalities import CLASS_NAMES
    from sentryfuse_ros.nodes.offline_loop import replay
    from sentryfuse_ros.nodes.prediction_loop import LoopConfig
    from sentryfuse_ros.nodes.sim_sources import DatasetSource

    torch.set_num_threads(1)
    source = DatasetSource("test")
    indices = list(range(min(samples, len(source))))
    labels = [CLASS_NAMES[int(source.sample(i).label)] for i in indices]
    messages = sim_messages(source, indices)
    duration_s = len(indices) * SAMPLE_PERIOD_S
    scores = {}
    for behaviour in behaviours():
        result = replay(messages, duration_s, behaviour.rate_hz, behaviour.trigger, behaviour.shed,
                        LoopConfig(follow_up_s=follow_up_s))
        for ratio in RATIOS:
            scores[(behaviour, ratio)] = score(result, labels, cache, ratio)
            scores[(behaviour, ratio)].pop("correct")
    sweep = []
    rate = scores[(Behaviour(10.0, "rate", ""), 0.0)]
    for step in FOLLOW_UPS_S:
        result = replay(messages, duration_s, 10.0, "change", "", LoopConfig(follow_up_s=step))
        figures = score(result, labels, cache, 0.0)
        figures.pop("correct")
        sweep.append({"follow_up_s": step, **figures, "fewer_forwards": round(
            rate["predictions_per_sample"] / figures["predictions_per_sample"], 2),
            "accuracy_loss_points": round(rate["accuracy"] - figures["accuracy"], 2)})
    return scores, sweep


# --- live ----------------------------------------------------------------------------------------
def _parameters(behaviour: Behaviour) -> dict[str, list]:
    from rclpy.parameter import Parameter

    inference = [Parameter(param_name("full", "rate_hz"), value=behaviour.rate_hz),
                 Parameter(param_name("full", "trigger"), value=behaviour.trigger),
                 Parameter(param_name("full", "shed"), value=behaviour.shed),
                 Parameter(param_name("full", "prune_ratio"), value=MEASURE_RATIO)]
    monitor = [Parameter("power.check_periods_s", value=[behaviour.check_period_s(), 0.0, 0.0, 0.0])]
    return {"inference_node": inference, "heartbeat_monitor": monitor}


def _set_parameters(node, name: str, parameters) -> None:
    from rcl_interfaces.srv import SetParameters

    from sentryfuse_ros.nodes.lifecycle_client import call_service

    request = SetParameters.Request(parameters=[p.to_parameter_msg() for p in parameters])
    response = call_service(node, SetParameters, f"/{name}/set_parameters", request, 10.0)
    if response is None:
        raise BenchError(f"{name} did not answer set_parameters")
    refused = [result.reason for result in response.results if not result.successful]
    if refused:
        raise BenchError(f"{name} refused the candidate's parameters: {refused[0]}")


def measure_behaviours(args, settle_s: float, window_s: float) -> dict[Behaviour, dict]:
    from sentryfuse_ros.bench.plan_switch import SwitchTracker
    from sentryfuse_ros.bench.power_levels import breakdown, cpu_cores
    from sentryfuse_ros.bench.power_run import PowerObserver, running_system
    from sentryfuse_ros.bench.ros_bench import load_source, ratio_for
    from sentryfuse_ros.bench.ros_bench_setup import bench_params
    from sentryfuse_ros.bench.ros_observer import Topics
    from sentryfuse_ros.bench.sample_ledger import SampleLedger
    from sentryfuse_ros.bringup import BringupConfig
    from sentryfuse_ros.nodes import inference_params, monitor_params, sim_params
    from sentryfuse_ros.nodes.params import values_from_params_file
    from sentryfuse_ros.ros_domain import use_own_domain

    use_own_domain()
    folder = Path(tempfile.mkdtemp(prefix="sentryfuse-policy-fit-"))
    params = bench_params(yaml.safe_load(args.params_file.read_text()) or {}, "dataset")
    params[params_key("sensor_sim")]["ros__parameters"].setdefault("battery", {})["initial"] = 1.0
    params_path = folder / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    sim_values = values_from_params_file(params_path, "sensor_sim", sim_params.PARAMS)
    node_values = values_from_params_file(params_path, "inference_node", inference_params.PARAMS)
    monitor_values = values_from_params_file(params_path, "heartbeat_monitor", monitor_params.PARAMS)
    ledger = SampleLedger(sim_values["start_index"], len(load_source("dataset", sim_values)))
    topics = Topics(node_values["prediction_topic"], monitor_values["state_topic"], sim_values["ground_truth_topic"])
    config = BringupConfig(params_file=params_path, use_sim=True, weights=args.weights, gate=args.gate)
    measured = {}
    observer = lambda node: PowerObserver(node, topics, ledger, SwitchTracker(ratio_for(node_values)))  # noqa: E731
    with running_system(config, observer, folder / "nodes.log", "policy_fit_observer") as session:
        for behaviour in behaviours():
            for name, parameters in _parameters(behaviour).items():
                _set_parameters(session.node, name, parameters)
            session.spin_until(lambda: False, time.monotonic() + settle_s)
            start = session.mark_with_diagnostics(time.monotonic() + 1.5)
            session.spin_until(lambda: False, time.monotonic() + window_s)
            end = session.mark_with_diagnostics(time.monotonic() + 1.5)
            seconds = end.at - start.at
            cores = cpu_cores(start.cpu_s, end.cpu_s, seconds)
            onset = ledger.onset(start.ros_ns, end.ros_ns)
            parts = breakdown(start.inference, end.inference, seconds, None)
            measured[behaviour] = {
                "cpu_core": cores["product"], "predictions_per_s": round((end.predictions - start.predictions) / seconds, 2),
                "onset_p50_ms": onset["p50"], "onset_samples": onset["samples"],
                "modality_cpu_ms_per_s": {m: round(parts.get(f"ingest {m}", 0.0) + parts.get(f"preprocess {m}", 0.0), 3)
                                          for m in MODALITIES},
            }
            print(f"  {behaviour}: {measured[behaviour]}", file=sys.stderr, flush=True)
    return measured


# --- the command ---------------------------------------------------------------------------------
def fit(args: argparse.Namespace) -> dict:
    from sentryfuse_ros.nodes import inference_params
    from sentryfuse_ros.nodes.params import values_from_params_file

    if args.samples < 10:
        raise BenchError("--samples must be at least 10")
    settle_s, window_s = DURATIONS[args.quick]
    follow_up_s = values_from_params_file(args.params_file, "inference_node", inference_params.PARAMS)["change.follow_up_s"]
    cache = load_cache(args.weights, args.gate)
    accuracy = split_accuracy(cache)
    scores, sweep = replayed(cache, args.samples, follow_up_s)
    print(f"replayed {len(scores)} candidates on {args.samples} samples", file=sys.stderr, flush=True)
    measured = measure_behaviours(args, settle_s, window_s)
    found = candidates(measured, scores)
    reference = Behaviour(10.0, "rate", "")
    values = modality_values(accuracy, measured[reference]["modality_cpu_ms_per_s"])
    chosen = choose(found)
    block = config_block(chosen, [row["modality"] for row in values])
    report = {
        "split_accuracy": [{"subset": "+".join(subset), "prune_ratio": ratio, "accuracy": acc}
                           for (subset, ratio), acc in accuracy.items()],
        "replayed_samples": args.samples,
        "follow_up_s": follow_up_s,
        "follow_up_sweep": sweep,
        "measured": [{**asdict(behaviour), "check_period_s": behaviour.check_period_s(), **figures}
                     for behaviour, figures in measured.items()],
        "candidates": [asdict(c) for c in found],
        "pareto_front": [asdict(c) for c in pareto_front(found)],
        "chosen": chosen,
        "modality_values": values,
        "config": block,
        "window_s": window_s,
        "settle_s": settle_s,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "policy.yaml").write_text(yaml.safe_dump(
        {params_key(node): {"ros__parameters": section} for node, section in block.items()}, sort_keys=False))
    report["plot"] = str(plot(report, args.out / "policy_fit.png"))
    report["json"] = str(args.out / "policy_fit.json")
    Path(report["json"]).write_text(json.dumps(report, indent=2) + "\n")
    return report


def summary(report: dict) -> str:
    lines = ["sentryfuse policy fit: product CPU (live) and replayed accuracy of each candidate", "",
             "Pareto front (CPU % core, accuracy %, policy):"]
    lines += [f"  {100 * c['cpu_core']:5.1f}  {c['accuracy']:5.1f}  ratio {c['prune_ratio']:g} {c['rate_hz']:g} Hz "
              f"{c['trigger']} shed [{c['shed']}] onset p50 {c['onset_p50_ms']} ms" for c in report["pareto_front"]]
    lines += ["", "chosen:"]
    for level, entry in report["chosen"].items():
        c = entry["candidate"]
        lines.append(f"  {level:8s} ratio {c['prune_ratio']:g}, {c['rate_hz']:g} Hz, {c['trigger']}, shed [{c['shed']}]: "
                     f"CPU {100 * c['cpu_core']:.1f}% core, accuracy {c['accuracy']:.1f}% ({entry['rule']}"
                     f"{'' if entry['met'] else ': none qualifies, the cheapest taken'})")
    lines += ["", "change trigger at full (10 Hz, nothing shed, ratio 0), replayed, against the rate trigger:"]
    lines += [f"  follow_up_s {row['follow_up_s']:g}: {row['predictions_per_sample']} predictions/sample "
              f"({row['fewer_forwards']}x fewer), accuracy {row['accuracy']} % (loss {row['accuracy_loss_points']}), "
              f"onset p50 {row['onset_p50_ms']} ms" for row in report["follow_up_sweep"]]
    lines += ["", "modality value (accuracy added given the others / CPU of taking and preprocessing it):"]
    lines += [f"  {row['modality']}: +{row['accuracy_added_points']} points, {row['cpu_ms_per_s']} ms/s"
              for row in report["modality_values"]]
    lines += ["", f"parameter block: {Path(report['json']).parent / 'policy.yaml'}; plot: {report['plot']}; "
                  f"JSON: {report['json']}"]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, 4.8))
    every = report["candidates"]
    axes.scatter([100 * c["cpu_core"] for c in every], [c["accuracy"] for c in every], s=12, color="lightgrey",
                 label="candidates")
    front = report["pareto_front"]
    axes.plot([100 * c["cpu_core"] for c in front], [c["accuracy"] for c in front], "-o", markersize=4,
              label="Pareto front")
    for level, entry in report["chosen"].items():
        c = entry["candidate"]
        axes.plot([100 * c["cpu_core"]], [c["accuracy"]], "*", markersize=14)
        axes.annotate(level, (100 * c["cpu_core"], c["accuracy"]), textcoords="offset points", xytext=(6, -10))
    axes.set_xlabel("product CPU, % of one core (live, sensor_sim excluded)")
    axes.set_ylabel(f"accuracy, % of {report['replayed_samples']} replayed test samples")
    axes.set_title("sentryfuse policy fit")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
