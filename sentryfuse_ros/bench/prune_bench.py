"""`sentryfuse bench prune`: what pruning buys on this machine, against the dense multi-head model.

Configurations: the dense multi-head twin of the backbone (same width and depth, one K/V per
head, full attention), SentryAttend unpruned, and SentryAttend sliced by SentryGate's plan for
the full modality set at each ratio. Per configuration: parameters, GFLOPs of one batch-1
forward (torch's FlopCounterMode), weight memory (bytes of parameters and buffers), peak RSS,
batch-1 latency p50/p95 at each thread count, and achieved FLOP/s as a fraction of this
machine's large-matmul peak at the same thread count.

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
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from sentryfuse_ros.bench.flops import flops_per_sample
from sentryfuse_ros.bench.timing import measure_latency
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.model.checkpoint import load_checkpoint, save_checkpoint, shipped_checkpoint
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.registry import build_method
from sentryfuse_ros.pruning.slicing import parameter_count, sliced_model

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
TARGET_RATIO = 0.5
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


def weight_bytes(model: nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


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
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    flops_fraction_of_peak: dict[str, float] = field(default_factory=dict)


def measure(
    name: str, kind: str, ratio, model: SentryAttend, peaks: dict[int, float], args, workdir: Path
) -> Measurement:
    model = model.eval()
    inputs = batch_one_inputs()
    flops = flops_per_sample(model, inputs)
    rss, model_rss = peak_rss(model, workdir)
    result = Measurement(
        name, kind, ratio, parameter_count(model), flops / 1e9, weight_bytes(model) / 2**20, rss, model_rss
    )
    for threads, peak in peaks.items():
        latency = measure_latency(lambda: model(inputs), threads=threads, runs=args.runs, warmup=args.warmup)
        result.latency_ms[str(threads)] = {"p50": latency.p50_ms, "p95": latency.p95_ms}
        result.flops_fraction_of_peak[str(threads)] = flops / (latency.p50_ms / 1e3) / peak
    return result


def target_summary(measurements: list[Measurement]) -> dict | None:
    """The SentryGate issue's efficiency targets at ratio 0.5, against the dense multi-head model."""
    dense = next(m for m in measurements if m.kind == "dense_mha")
    pruned = next((m for m in measurements if m.kind == "pruned" and m.ratio == TARGET_RATIO), None)
    if pruned is None:
        return None
    return {
        "ratio": TARGET_RATIO,
        "latency_speedup_p50": {t: dense.latency_ms[t]["p50"] / pruned.latency_ms[t]["p50"] for t in dense.latency_ms},
        "weight_memory_reduction": 1 - pruned.weight_mb / dense.weight_mb,
        "peak_rss_reduction": 1 - pruned.peak_rss_mb / dense.peak_rss_mb,
        "model_rss_reduction": 1 - pruned.model_rss_mb / dense.model_rss_mb if dense.model_rss_mb > 0 else None,
    }


def run(args: argparse.Namespace) -> int:
    ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    backbone = load_checkpoint(args.checkpoint or shipped_checkpoint()).model
    method = build_method(args.method, backbone=args.checkpoint, gate=args.gate)
    dense, dense_weights = dense_twin(backbone)
    peaks = {threads: matmul_peak_flops(threads, args.matmul_size) for threads in thread_counts}
    configurations = [("dense-mha", "dense_mha", None, dense), ("sentryattend", "sentryattend", None, backbone)]
    for ratio in ratios:
        # Data-free methods only (PLAN_METHODS): no calibration set is passed.
        plan = method.plan(backbone, MODALITIES, ratio, None, 0)
        configurations.append((f"{args.method}@{ratio:g}", "pruned", ratio, sliced_model(backbone, plan)))
    with tempfile.TemporaryDirectory() as workdir:
        measurements = [
            measure(name, kind, ratio, model, peaks, args, Path(workdir)) for name, kind, ratio, model in configurations
        ]
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "matmul_size": args.matmul_size,
            "matmul_peak_gflops": {str(t): peak / 1e9 for t, peak in peaks.items()},
        },
        "plan_method": args.method,
        "subset": "+".join(MODALITIES),
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
        header += [f"p50 ms @{t}t", f"p95 ms @{t}t", f"% peak @{t}t"]
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
            latency = m["latency_ms"][t]
            cells += [f"{latency['p50']:.3f}", f"{latency['p95']:.3f}", f"{100 * m['flops_fraction_of_peak'][t]:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    peaks = ", ".join(f"{gflops:.1f} GFLOP/s @{t}t" for t, gflops in report["machine"]["matmul_peak_gflops"].items())
    lines += ["", f"matmul peak ({report['machine']['matmul_size']}^2 float32): {peaks}"]
    lines.append(f"dense multi-head weights: {report['dense_weights']}")
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
    return "\n".join(lines)


if __name__ == "__main__":
    # Child process of peak_rss(): `python -m sentryfuse_ros.bench.prune_bench --rss-child CHECKPOINT`.
    if len(sys.argv) == 3 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2])
    else:
        sys.exit(
            "usage: python -m sentryfuse_ros.bench.prune_bench --rss-child CHECKPOINT (use `sentryfuse bench prune`)"
        )
