"""`sentryfuse eval`: the pruning comparison grid on the held-out test split.

    sentryfuse eval --quick          # <= 3 minutes on 2 cores: 1 seed, ratios 0.2/0.4/0.6/0.8, 512 test examples
    sentryfuse eval                  # 7 subsets x 8 ratios (0.1..0.8) x 7 methods x 3 seeds, whole test split

Results go to results/eval[-quick]/: results.csv (resumable: rows already there for the same
backbone, settings and method are skipped), report.md and PNG plots; the headline is printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from sentryfuse_ros.evaluation.grid import FULL_GRID, QUICK_GRID, GridSpec, ResultsFile, model_digest
from sentryfuse_ros.evaluation.report import write_report
from sentryfuse_ros.evaluation.run import GridData, evaluate_grid
from sentryfuse_ros.evaluation.summary import Headline, Table
from sentryfuse_ros.model.checkpoint import CheckpointError, load_checkpoint, shipped_checkpoint
from sentryfuse_ros.pruning.method import Calibration, PruningMethod
from sentryfuse_ros.pruning.registry import DEFAULT_METHODS, GATE_METHODS, METHOD_NAMES, build_method

QUICK_OUT, FULL_OUT = Path("results/eval-quick"), Path("results/eval")
RESULTS_CSV = "results.csv"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="the small CI grid (1 seed, 3 ratios, 512 test examples)")
    parser.add_argument("--checkpoint", type=Path, help="SentryAttend checkpoint (default: the shipped one)")
    parser.add_argument("--gate", type=Path, help="SentryGate trained for that checkpoint (default: the shipped gate)")
    parser.add_argument("--out", type=Path, help=f"results folder (default {FULL_OUT}, or {QUICK_OUT} with --quick)")
    extra = [name for name in METHOD_NAMES if name not in DEFAULT_METHODS]
    parser.add_argument(
        "--methods", help=f"comma-separated methods (default {','.join(DEFAULT_METHODS)}; also {','.join(extra)})"
    )
    parser.add_argument("--split", choices=("test", "test_sklearn"), default="test",
                        help="test split: test, or test_sklearn (the digits' unseen writers; results in <out>-test_sklearn)")
    parser.add_argument("--data", default="digits",
                        help="dataset: digits (the benchmark) or a recorded dataset's name (its test and val splits)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def evaluate_and_report(
    data: GridData, spec: GridSpec, methods: Mapping[str, PruningMethod], out_dir: Path, progress: bool = True
) -> Headline:
    """Run (or resume) the grid for an injected model and data and write the report into out_dir."""
    rows = evaluate_grid(data, spec, methods, ResultsFile(out_dir / RESULTS_CSV), progress)
    return write_report(Table(rows), spec, model_digest(data.model), rows[0].n_test, out_dir)


def build_methods(
    names: tuple[str, ...], explicit: bool, checkpoint: Path | None = None, gate: Path | None = None
) -> dict[str, PruningMethod]:
    """The named methods; SentryGate is left out with a note when it cannot load, unless asked for by name."""
    methods = {}
    for name in names:
        try:
            methods[name] = build_method(name, backbone=checkpoint, gate=gate)
        except (ImportError, CheckpointError) as error:
            if explicit or name not in GATE_METHODS:
                raise
            print(f"note: SentryGate is left out of the grid, it cannot be loaded: {error}")
    return methods


def run(args: argparse.Namespace) -> int:
    # The dataset cache is only needed here, not by injected-data callers of evaluate_and_report.
    from sentryfuse_ros.data.recorded import DatasetError
    from sentryfuse_ros.modalities import subsets_of
    from sentryfuse_ros.training.data import check_same_task, load_labelled_split

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = replace(QUICK_GRID if args.quick else FULL_GRID, test_split=args.split)
    if args.methods:
        spec = replace(spec, methods=tuple(name.strip() for name in args.methods.split(",") if name.strip()))
    methods = build_methods(spec.methods, explicit=bool(args.methods), checkpoint=args.checkpoint, gate=args.gate)
    spec = replace(spec, methods=tuple(methods))
    model = load_checkpoint(args.checkpoint or shipped_checkpoint()).model
    try:
        test = load_labelled_split(spec.test_split, args.data)
        calibration = load_labelled_split(spec.calibration_split, args.data)
        check_same_task(model.config.input, test, args.data)
    except DatasetError as error:
        print(f"sentryfuse eval: error: {error}", file=sys.stderr)
        return 2
    spec = replace(spec, subsets=subsets_of(model.config.modalities))
    pool = Calibration(calibration.inputs, calibration.labels)
    out_dir = args.out or (QUICK_OUT if args.quick else FULL_OUT)
    if args.out is None and args.split != "test":
        out_dir = out_dir.with_name(f"{out_dir.name}-{args.split}")
    data = GridData(model, test.inputs, test.labels, pool)
    summary = evaluate_and_report(data, spec, methods, out_dir, progress=not args.no_progress)
    print(summary)
    print(f"results.csv, {out_dir / 'report.md'} and plots in {out_dir}/")
    return 0
