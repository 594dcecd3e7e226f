"""`sentryfuse bench model`: accuracy, size, FLOPs and latency of the shipped SentryAttend checkpoints.

Evaluates sentryattend (sparse GQA, modality dropout), dense (its dense multi-head twin) and
no_dropout (sparse GQA trained on all modalities only) from sentryfuse_ros/weights/ on the
prepared test split, and checks the issue's targets.

`--json` prints one JSON object:
  threads, latency_runs        settings of the latency measurement
  n_test, n_test_sklearn       samples evaluated; n_held_out_human_voices: test samples spoken by
                               the held-out human voices (the rest of test: held-out espeak voices)
  models.<name>                for each of sentryattend, dense, no_dropout:
    attention                  "sparse_gqa" or "dense_mha"
    params, weights_bytes      parameter count and size of the .safetensors file
    gflops                     GFLOPs per sample, all three modalities (torch.utils.flop_counter)
    gflops_by_subset           the same for each of the 7 modality subsets
    latency_ms                 {p50, p95, mean}: batch 1, all modalities, `threads` torch threads
    test_accuracy              {subset: accuracy in [0, 1]} for the 7 subsets, test split
    test_sklearn_accuracy      the same on test_sklearn (camera digits from unseen writers)
    held_out_human_voices_audio_accuracy   audio-only accuracy on the held-out human voices
    held_out_synthetic_voices_audio_accuracy  audio-only accuracy on the held-out espeak voices
    train_minutes, best_epoch, val_score   from the shipped training log and checkpoint
  targets.<name>               {value, limit, met, description} for each target
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS, subset_name

MODEL_NAMES = ("sentryattend", "dense", "no_dropout")
# The package's weights folder (model.checkpoint.SHIPPED_WEIGHTS_DIR), without importing torch for --help.
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
ALL = subset_name(MODALITIES)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for latency and evaluation (default 2)")
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 forwards per model (default 300)")
    parser.add_argument("--weights-dir", type=Path, default=SHIPPED_WEIGHTS_DIR, help="directory of the checkpoints")
    parser.add_argument("--data", default="digits",
                        help="digits (the shipped checkpoints on the benchmark) or a recorded dataset: then --checkpoint")
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint trained on --data (a recorded dataset)")


def run(args: argparse.Namespace) -> int:
    if args.data != "digits":
        if args.checkpoint is None:
            print("sentryfuse bench model: error: --data NAME needs --checkpoint (the model trained on it)")
            return 2
        from sentryfuse_ros.data.recorded import DatasetError

        try:
            report = measure_task(args.checkpoint, args.data, args.threads, args.runs)
        except DatasetError as error:
            print(f"sentryfuse bench model: error: {error}")
            return 2
        print(json.dumps(report, indent=2) if args.json else render_task_table(report))
        return 0
    report = measure(args.weights_dir, args.threads, args.runs)
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0


def measure_task(checkpoint: Path, data: str, threads: int, runs: int) -> dict:
    """Accuracy per modality subset of the task, FLOPs, parameters and latency of one checkpoint
    on a recorded dataset's test split."""
    from sentryfuse_ros.bench.flops import flops_per_sample
    from sentryfuse_ros.bench.timing import measure_latency, torch_threads
    from sentryfuse_ros.data.spec import describe_task
    from sentryfuse_ros.model.checkpoint import checkpoint_paths, load_checkpoint
    from sentryfuse_ros.modalities import subsets_of
    from sentryfuse_ros.training.data import check_same_task, load_labelled_split
    from sentryfuse_ros.training.evaluate import subset_accuracies

    model = load_checkpoint(checkpoint).model
    test = load_labelled_split("test", data)
    check_same_task(model.config.input, test, data)
    subsets = subsets_of(model.config.modalities)
    one_sample = {name: tensor[:1] for name, tensor in test.inputs.items()}
    with torch_threads(threads):
        latency = measure_latency(lambda: model(one_sample), threads=threads, runs=runs)
        accuracy = subset_accuracies(model, test.inputs, test.labels, subsets)
        gflops = {subset_name(s): flops_per_sample(model, {m: one_sample[m] for m in s}) / 1e9 for s in subsets}
    return {"data": data, "checkpoint": str(checkpoint), "task": describe_task(model.config.input),
            "n_test": len(test), "threads": threads, "latency_runs": runs, "test_accuracy": accuracy,
            "gflops_by_subset": gflops, "params": sum(p.numel() for p in model.parameters()),
            "weights_bytes": checkpoint_paths(checkpoint)[0].stat().st_size,
            "latency_ms": {"p50": latency.p50_ms, "p95": latency.p95_ms, "mean": latency.mean_ms}}


def render_task_table(report: dict) -> str:
    lines = [f"{report['checkpoint']} on {report['data']} ({report['task']}): test split, {report['n_test']} samples"]
    for subset, value in report["test_accuracy"].items():
        lines.append(f"  {subset:<20} {100 * value:6.2f} %   {report['gflops_by_subset'][subset]:.4f} GFLOPs")
    lines.append(f"  parameters {report['params']:,}; weights {report['weights_bytes'] / 2**20:.2f} MB; batch-1 latency "
                 f"p50 {report['latency_ms']['p50']:.2f} ms, p95 {report['latency_ms']['p95']:.2f} ms "
                 f"({report['threads']} threads)")
    return "\n".join(lines)


def measure(weights_dir: Path, threads: int, runs: int) -> dict:
    from sentryfuse_ros.bench.flops import flops_per_sample
    from sentryfuse_ros.bench.timing import measure_latency, torch_threads
    from sentryfuse_ros.data.dataset import load_split
    from sentryfuse_ros.model.checkpoint import checkpoint_paths, load_checkpoint
    from sentryfuse_ros.training.evaluate import accuracy, subset_accuracies
    from sentryfuse_ros.training.metrics_log import read_metrics_log

    test, sklearn = load_split("test"), load_split("test_sklearn")
    test_inputs, sklearn_inputs = test.tensors(), sklearn.tensors()
    human = ~test.is_synthetic_voice
    voices = {
        "human": ({"audio": test_inputs["audio"][human]}, test.labels[human]),
        "synthetic": ({"audio": test_inputs["audio"][~human]}, test.labels[~human]),
    }
    one_sample = {name: tensor[:1] for name, tensor in test_inputs.items()}
    models = {}
    with torch_threads(threads):
        for name in MODEL_NAMES:
            weights_path, _ = checkpoint_paths(weights_dir / name)
            checkpoint = load_checkpoint(weights_path)
            model = checkpoint.model
            gflops = {
                subset_name(s): flops_per_sample(model, {m: one_sample[m] for m in s}) / 1e9 for s in MODALITY_SUBSETS
            }
            latency = measure_latency(lambda: model(one_sample), threads=threads, runs=runs)
            log = read_metrics_log(weights_dir / f"{name}.train.jsonl")
            models[name] = {
                "attention": model.config.attention,
                "params": sum(p.numel() for p in model.parameters()),
                "weights_bytes": weights_path.stat().st_size,
                "gflops": gflops[ALL],
                "gflops_by_subset": gflops,
                "latency_ms": {"p50": latency.p50_ms, "p95": latency.p95_ms, "mean": latency.mean_ms},
                "test_accuracy": subset_accuracies(model, test_inputs, test.labels),
                "test_sklearn_accuracy": subset_accuracies(model, sklearn_inputs, sklearn.labels),
                "held_out_human_voices_audio_accuracy": accuracy(model, *voices["human"], ("audio",)),
                "held_out_synthetic_voices_audio_accuracy": accuracy(model, *voices["synthetic"], ("audio",)),
                "train_minutes": log[-1]["seconds"] / 60,
                "best_epoch": checkpoint.meta["epoch"],
                "val_score": checkpoint.meta["val_score"],
            }
    return {
        "threads": threads,
        "latency_runs": runs,
        "n_test": len(test),
        "n_test_sklearn": len(sklearn),
        "n_held_out_human_voices": int(human.sum()),
        "models": models,
        "targets": check_targets(models),
    }


def check_targets(models: dict) -> dict:
    """The issue's targets, each with its measured value and limit."""
    sentry, dense, no_dropout = (models[name] for name in MODEL_NAMES)
    accuracy = sentry["test_accuracy"]
    best_single = max(accuracy[m] for m in MODALITIES)
    margins = {s: accuracy[s] - no_dropout["test_accuracy"][s] for s in accuracy}
    accuracy_loss = max(
        dense["test_accuracy"][ALL] - accuracy[ALL], _mean(dense["test_accuracy"]) - _mean(accuracy)
    )
    flops_ratio = sentry["gflops"] / dense["gflops"]
    targets = {
        "fusion_gain_points": (
            100 * (accuracy[ALL] - best_single), 5.0, ">=",
            "all three modalities vs the best single modality, SentryAttend, test",
        ),
        "min_margin_over_no_dropout_points": (
            100 * min(margins.values()), 0.0, ">",
            "smallest accuracy margin of SentryAttend over the no-dropout model across the 7 subsets",
        ),
        "sparse_to_dense_gflops": (flops_ratio, 0.80, "<=", "SentryAttend GFLOPs / dense twin GFLOPs, all modalities"),
        "sparse_accuracy_loss_points": (
            100 * accuracy_loss, 1.0, "<=",
            "dense minus SentryAttend accuracy, the worse of all-modalities and mean over the 7 subsets",
        ),
        "latency_p95_ms": (sentry["latency_ms"]["p95"], 10.0, "<=", "SentryAttend batch-1 p95 latency"),
        "weights_mb": (sentry["weights_bytes"] / 2**20, 10.0, "<=", "shipped SentryAttend weights file"),
    }
    compare = {">=": lambda v, l: v >= l, ">": lambda v, l: v > l, "<=": lambda v, l: v <= l}
    return {
        name: {"value": value, "limit": f"{op} {limit}", "met": compare[op](value, limit), "description": text}
        for name, (value, limit, op, text) in targets.items()
    }


def _mean(scores: dict[str, float]) -> float:
    return sum(scores.values()) / len(scores)


def render_table(report: dict) -> str:
    models = report["models"]
    width = 34
    header = f"{'':<{width}}" + "".join(f"{name:>14}" for name in MODEL_NAMES)
    lines = [f"SentryAttend checkpoints: test split ({report['n_test']} samples), accuracy in %", header]

    def row(label: str, values, fmt: str = "{:>14.2f}") -> None:
        lines.append(f"{label:<{width}}" + "".join(fmt.format(v) for v in values))

    for subset in MODALITY_SUBSETS:
        key = subset_name(subset)
        row(f"  {key}", [100 * models[n]["test_accuracy"][key] for n in MODEL_NAMES])
    row(f"held-out human voices, audio ({report['n_held_out_human_voices']})",
        [100 * models[n]["held_out_human_voices_audio_accuracy"] for n in MODEL_NAMES])
    row("held-out synthetic voices, audio", [100 * models[n]["held_out_synthetic_voices_audio_accuracy"] for n in MODEL_NAMES])
    lines.append(f"test_sklearn: unseen writers ({report['n_test_sklearn']} samples)")
    for subset in MODALITY_SUBSETS:
        key = subset_name(subset)
        row(f"  {key}", [100 * models[n]["test_sklearn_accuracy"][key] for n in MODEL_NAMES])
    lines.append("cost")
    row("  parameters", [models[n]["params"] for n in MODEL_NAMES], "{:>14,d}")
    row("  GFLOPs / sample, all modalities", [models[n]["gflops"] for n in MODEL_NAMES], "{:>14.4f}")
    for subset in MODALITY_SUBSETS:
        key = subset_name(subset)
        if key != ALL:
            row(f"    {key}", [models[n]["gflops_by_subset"][key] for n in MODEL_NAMES], "{:>14.4f}")
    threads = report["threads"]
    row(f"  latency p50 ms (batch 1, {threads} thr)", [models[n]["latency_ms"]["p50"] for n in MODEL_NAMES])
    row(f"  latency p95 ms (batch 1, {threads} thr)", [models[n]["latency_ms"]["p95"] for n in MODEL_NAMES])
    row("  weights MB", [models[n]["weights_bytes"] / 2**20 for n in MODEL_NAMES])
    row("  training minutes", [models[n]["train_minutes"] for n in MODEL_NAMES], "{:>14.1f}")
    lines.append("targets")
    for name, target in report["targets"].items():
        status = "met" if target["met"] else "NOT met"
        lines.append(f"  [{status:>7}] {name} = {target['value']:.3f} (target {target['limit']}): {target['description']}")
    return "\n".join(lines)
