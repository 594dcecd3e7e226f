"""`sentryfuse bench prune`: what pruning buys on this machine, against the dense multi-head model.

Configurations: the dense multi-head twin of the backbone (same width and depth, one K/V per
head, full attention), SentryAttend unpruned, and SentryAttend sliced by SentryGate's plan for
the full modality set at each ratio. Per configuration: parameters, GFLOPs of one batch-1
forward (torch's FlopCounterMode), weight memory (bytes of parameters and buffers), peak RSS,
batch-1 latency p50/p95 at each thread count under the forward runtime `--runtime` gives it
(pruning/runtime.py; "auto" measures and picks, as PlanCache(runtime="auto") does), the
eager torch latency beside it, and achieved FLOP/s as a fraction of this machine's large-matmul
peak at the same thread count.

`--width-multiplier N` times a model N times wider (d_model and FFN width; same depth, heads
and patches) with random weights, sliced by the real plan widened to it (the same heads, every
kept FFN channel's N copies): a speed figure for a larger model, not an accuracy one.

Peak RSS is measured in a fresh process per configuration, so no configuration inherits another's
allocations: after importing torch and building the inputs the process resets its peak-RSS
counter (Linux /proc/self/clear_refs), then loads the model from a checkpoint and runs it, and
reports its peak RSS (VmHWM) over that phase. Importing torch peaks higher than a model this
small ever reaches, which is why the counter is reset rather than ru_maxrss read. The Python +
torch baseline still dwarfs the model, so `model_rss_mb` (that peak minus the RSS just before
loading) isolates what the model itself adds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from sentryfuse_ros.bench.flops import flops_per_sample
from sentryfuse_ros.bench.timing import measure_latencies, measure_latency, torch_threads
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.model.checkpoint import load_checkpoint, save_checkpoint, shipped_checkpoint
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.plan import LayerPlan, PrunePlan
from sentryfuse_ros.pruning.registry import build_method
from sentryfuse_ros.pruning.runtime import POLICIES, choose_runtime
from sentryfuse_ros.pruning.slicing import parameter_count, sliced_model, weight_bytes

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TARGET_RATIO = 0.5
# The runtime issue's targets for pruned@0.5 against unpruned SentryAttend, by width multiplier.
SPEEDUP_VS_UNPRUNED_TARGETS = {1: 1.6, 4: 2.0}
# Plans need no data here: only methods that plan without calibration data can be benchmarked.
PLAN_METHODS = ("sentrygate", "magnitude", "random")
MATMUL_SIZE = 2048
RSS_FORWARDS = 20


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, help="SentryAttend checkpoint (default: the shipped one)")
    parser.add_argument(
        "--method", choices=PLAN_METHODS, default="sentrygate", help="whose plans to slice (default sentrygate)"
    )
    parser.add_argument("--gate", type=Path, help="SentryGate trained for that checkpoint (default: the shipped gate)")
    parser.add_argument("--ratios", default=",".join(map(str, RATIOS)), help="comma-separated prune ratios")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to time at")
    parser.add_argument(
        "--runs", type=int, default=200, help="timed batch-1 forwards per configuration and thread count"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed forwards first")
    parser.add_argument(
        "--runtime",
        choices=POLICIES,
        default="auto",
        help='forward runtime (default auto: measure and pick, as PlanCache(runtime="auto") does)',
    )
    parser.add_argument(
        "--width-multiplier",
        type=int,
        default=1,
        help="time a model N times wider (d_model, FFN) with random weights, pruned like the real plans",
    )
    parser.add_argument(
        "--matmul-size", type=int, default=MATMUL_SIZE, help="side of the square matmul measuring the peak"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def batch_one_inputs() -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(0)
    spec = INPUT_SPEC
    shapes = {
        "camera": (1, 1, spec.image_size, spec.image_size),
        "imu": (1, spec.imu_channels, spec.imu_window_samples),
        "audio": (1, spec.audio_n_mels, spec.audio_frames),
    }
    return {name: torch.randn(shapes[name], generator=generator) for name in MODALITIES}


def matmul_peak_flops(threads: int, size: int = MATMUL_SIZE, runs: int = 10) -> float:
    """FLOP/s of a large float32 matmul at `threads` threads: the practical compute ceiling."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    latency = measure_latency(lambda: a @ b, threads=threads, runs=runs, warmup=2)
    return 2 * size**3 / (latency.p50_ms / 1e3)


def dense_twin(model: SentryAttend) -> tuple[SentryAttend, str]:
    """The dense multi-head twin: the shipped trained one when it matches the backbone, else same-shape random init."""
    config = model.config.dense_twin()
    shipped = shipped_checkpoint("dense")
    if shipped.is_file():
        loaded = load_checkpoint(shipped).model
        if loaded.config == config:
            return loaded, f"trained ({shipped.name})"
    torch.manual_seed(0)
    random_init = SentryAttend(config).eval()
    return random_init, "random init, same shape (FLOPs, latency and memory do not depend on the values)"


def widened(model: SentryAttend, factor: int) -> SentryAttend:
    """`model`'s architecture with d_model and every FFN `factor` times wider, random weights.
    The input statistics are copied, so inputs standardise as for the real model."""
    config = model.config
    layers = None
    if config.layers is not None:
        layers = tuple(replace(layer, ffn_dim=layer.ffn_dim * factor) for layer in config.layers)
    torch.manual_seed(0)
    wide_config = replace(config, d_model=config.d_model * factor, ffn_dim=config.ffn_dim * factor, layers=layers)
    wide = SentryAttend(wide_config)
    for name, tokenizer in wide.tokenizers.items():
        tokenizer.input_mean.copy_(model.tokenizers[name].input_mean)
        tokenizer.input_std.copy_(model.tokenizers[name].input_std)
    return wide.eval()


def widened_plan(plan: PrunePlan, factor: int) -> PrunePlan:
    """`plan` for the widened model: the same heads, each kept channel's `factor` copies. Scales
    and bias corrections are dropped: they refine trained weights, and these are random."""
    layers = tuple(
        LayerPlan(layer.kept_heads, tuple(c * factor + i for c in layer.kept_channels for i in range(factor)))
        for layer in plan.layers
    )
    return PrunePlan(layers, plan.ratio)


def peak_rss(model: SentryAttend, workdir: Path) -> tuple[float, float]:
    """(peak RSS MB, RSS MB added by loading and running the model) in a fresh process."""
    path = save_checkpoint(model, workdir / "model")
    command = [sys.executable, "-m", "sentryfuse_ros.bench.prune_bench", "--rss-child", str(path)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    measured = json.loads(output.strip().splitlines()[-1])
    return measured["peak_kb"] / 1024, (measured["peak_kb"] - measured["before_kb"]) / 1024


def _status_kb(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE).group(1))


def _rss_child(path: str) -> None:
    torch.set_num_threads(1)
    inputs = batch_one_inputs()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS (VmHWM) := current RSS
    before = _status_kb("VmRSS")
    model = load_checkpoint(path).model
    with torch.inference_mode():
        for _ in range(RSS_FORWARDS):
            model(inputs)
    print(json.dumps({"before_kb": before, "peak_kb": _status_kb("VmHWM")}))


@dataclass
class Measurement:
    name: str
    kind: str
    ratio: float | None
    parameters: int
    gflops: float
    weight_mb: float
    peak_rss_mb: float
    model_rss_mb: float
    # Per thread count: the runtime used, its latency, and eager torch's for comparison.
    runtime: dict[str, str] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    eager_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    flops_fraction_of_peak: dict[str, float] = field(default_factory=dict)


def measure(name: str, kind: str, ratio, model: SentryAttend, workdir: Path) -> Measurement:
    """Everything but latency, which time_latencies() measures for all configurations together."""
    model = model.eval()
    rss, model_rss = peak_rss(model, workdir)
    flops = flops_per_sample(model, batch_one_inputs())
    megabytes = weight_bytes(model) / 2**20
    return Measurement(name, kind, ratio, parameter_count(model), flops / 1e9, megabytes, rss, model_rss)


def time_latencies(
    measurements: list[Measurement], models: list[SentryAttend], peaks: dict[int, float], args
) -> None:
    """Each configuration's latency under its runtime and in eager torch, at every thread count.

    The configurations are timed interleaved, so a burst of load from another process on a
    shared machine slows them alike and their speed-up ratios hold; the chosen runtimes and
    eager torch are timed apart, so eager's allocations do not evict the other's caches."""
    inputs = batch_one_inputs()
    for threads, peak in peaks.items():
        t = str(threads)
        with torch_threads(threads):  # the choice measures eager at the thread count it will run at
            forwards = [choose_runtime(model, MODALITIES, args.runtime, threads).runtime for model in models]
        chosen = {m.name: partial(forward, inputs) for m, forward in zip(measurements, forwards)}
        latencies = measure_latencies(chosen, threads=threads, runs=args.runs, warmup=args.warmup)
        eager = latencies
        if any(forward.name != "eager" for forward in forwards):
            eager_forwards = {m.name: partial(model, inputs) for m, model in zip(measurements, models)}
            eager = measure_latencies(eager_forwards, threads=threads, runs=args.runs, warmup=args.warmup)
        for measurement, forward in zip(measurements, forwards):
            latency, eager_latency = latencies[measurement.name], eager[measurement.name]
            measurement.runtime[t] = forward.name
            measurement.latency_ms[t] = {"p50": latency.p50_ms, "p95": latency.p95_ms}
            measurement.eager_latency_ms[t] = {"p50": eager_latency.p50_ms, "p95": eager_latency.p95_ms}
            measurement.flops_fraction_of_peak[t] = measurement.gflops * 1e9 / (latency.p50_ms / 1e3) / peak


def _speedup(baseline: Measurement, pruned: Measurement, latency: str) -> dict[str, float]:
    """p50 latency ratio baseline / pruned per thread count, from the `latency` field."""
    slow, fast = getattr(baseline, latency), getattr(pruned, latency)
    return {t: slow[t]["p50"] / fast[t]["p50"] for t in slow}


def target_summary(measurements: list[Measurement]) -> dict | None:
    """The efficiency targets at ratio 0.5: the SentryGate issue's against the dense multi-head
    model, and the runtime issue's against unpruned SentryAttend (under the chosen runtime, and
    in eager torch for comparison)."""
    dense = next(m for m in measurements if m.kind == "dense_mha")
    unpruned = next(m for m in measurements if m.kind == "sentryattend")
    pruned = next((m for m in measurements if m.kind == "pruned" and m.ratio == TARGET_RATIO), None)
    if pruned is None:
        return None
    return {
        "ratio": TARGET_RATIO,
        "latency_speedup_p50": _speedup(dense, pruned, "latency_ms"),
        "latency_speedup_vs_unpruned_p50": _speedup(unpruned, pruned, "latency_ms"),
        "eager_latency_speedup_vs_unpruned_p50": _speedup(unpruned, pruned, "eager_latency_ms"),
        "weight_memory_reduction": 1 - pruned.weight_mb / dense.weight_mb,
        "peak_rss_reduction": 1 - pruned.peak_rss_mb / dense.peak_rss_mb,
        "model_rss_reduction": 1 - pruned.model_rss_mb / dense.model_rss_mb if dense.model_rss_mb > 0 else None,
    }


def run(args: argparse.Namespace) -> int:
    ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    if args.width_multiplier < 1:
        raise SystemExit("--width-multiplier must be at least 1")
    backbone = load_checkpoint(args.checkpoint or shipped_checkpoint()).model
    method = build_method(args.method, backbone=args.checkpoint, gate=args.gate)
    timed = backbone if args.width_multiplier == 1 else widened(backbone, args.width_multiplier)
    dense, dense_weights = dense_twin(timed)
    peaks = {threads: matmul_peak_flops(threads, args.matmul_size) for threads in thread_counts}
    configurations = [("dense-mha", "dense_mha", None, dense), ("sentryattend", "sentryattend", None, timed)]
    for ratio in ratios:
        # Data-free methods only (PLAN_METHODS): no calibration set is passed. The plan is made
        # for the real backbone (a gate knows no other), then widened with it.
        plan = method.plan(backbone, MODALITIES, ratio, None, 0)
        if args.width_multiplier > 1:
            plan = widened_plan(plan, args.width_multiplier)
        configurations.append((f"{args.method}@{ratio:g}", "pruned", ratio, sliced_model(timed, plan)))
    with tempfile.TemporaryDirectory() as workdir:
        measurements = [measure(name, kind, ratio, model, Path(workdir)) for name, kind, ratio, model in configurations]
    time_latencies(measurements, [model for *_, model in configurations], peaks, args)
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "matmul_size": args.matmul_size,
            "matmul_peak_gflops": {str(t): peak / 1e9 for t, peak in peaks.items()},
        },
        "plan_method": args.method,
        "subset": "+".join(MODALITIES),
        "runtime_policy": args.runtime,
        "width_multiplier": args.width_multiplier,
        "dense_weights": dense_weights,
        "configurations": [vars(m) for m in measurements],
        "targets": target_summary(measurements),
    }
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def format_table(report: dict) -> str:
    threads = list(report["machine"]["matmul_peak_gflops"])
    header = ["configuration", "params", "GFLOPs", "weights MB", "peak RSS MB", "model RSS MB"]
    for t in threads:
        header += [f"runtime @{t}t", f"p50 ms @{t}t", f"p95 ms @{t}t", f"eager p50 ms @{t}t", f"% peak @{t}t"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in report["configurations"]:
        cells = [
            m["name"],
            f"{m['parameters']:,}",
            f"{m['gflops']:.4f}",
            f"{m['weight_mb']:.3f}",
            f"{m['peak_rss_mb']:.1f}",
            f"{m['model_rss_mb']:.1f}",
        ]
        for t in threads:
            latency, eager = m["latency_ms"][t], m["eager_latency_ms"][t]
            cells += [m["runtime"][t], f"{latency['p50']:.3f}", f"{latency['p95']:.3f}", f"{eager['p50']:.3f}"]
            cells.append(f"{100 * m['flops_fraction_of_peak'][t]:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    peaks = ", ".join(f"{gflops:.1f} GFLOP/s @{t}t" for t, gflops in report["machine"]["matmul_peak_gflops"].items())
    lines += ["", f"matmul peak ({report['machine']['matmul_size']}^2 float32): {peaks}"]
    lines.append(f"dense multi-head weights: {report['dense_weights']}")
    width = report["width_multiplier"]
    if width > 1:
        lines.append(f"width x{width}: d_model and FFN widened, random weights (a speed figure only)")
    targets = report["targets"]
    if targets:
        speedups = ", ".join(f"{s:.2f}x @{t}t" for t, s in targets["latency_speedup_p50"].items())
        model_rss = targets["model_rss_reduction"]
        lines.append(
            f"at ratio {targets['ratio']:g} vs dense multi-head: p50 latency {speedups} lower (target >= 2.0x); "
            f"weight memory {100 * targets['weight_memory_reduction']:.0f}% lower, peak RSS "
            f"{100 * targets['peak_rss_reduction']:.0f}% lower, model RSS "
            + ("n/a" if model_rss is None else f"{100 * model_rss:.0f}% lower")
            + " (target >= 35%)"
        )
        speedups = ", ".join(f"{s:.2f}x @{t}t" for t, s in targets["latency_speedup_vs_unpruned_p50"].items())
        eager = ", ".join(f"{s:.2f}x @{t}t" for t, s in targets["eager_latency_speedup_vs_unpruned_p50"].items())
        target = SPEEDUP_VS_UNPRUNED_TARGETS.get(width)
        lines.append(
            f"at ratio {targets['ratio']:g} vs unpruned SentryAttend: p50 latency {speedups} lower"
            + (f" (target >= {target:g}x)" if target else "")
            + f"; eager torch {eager}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    # Child process of peak_rss(): `python -m sentryfuse_ros.bench.prune_bench --rss-child CHECKPOINT`.
    if len(sys.argv) == 3 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2])
    else:
        sys.exit(
            "usage: python -m sentryfuse_ros.bench.prune_bench --rss-child CHECKPOINT (use `sentryfuse bench prune`)"
        )
