"""`sentryfuse gate train`: fit SentryGate to a trained SentryAttend backbone and save it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sentryfuse_ros.model.checkpoint import backbone_sha256, load_checkpoint, shipped_checkpoint
from sentryfuse_ros.model.gate_checkpoint import gate_beside, save_gate
from sentryfuse_ros.pruning.gate_targets import CHANNEL_CRITERIA, HEAD_CRITERIA
from sentryfuse_ros.pruning.gate_training import GateTrainingConfig, train_gate
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.data.recorded import DatasetError
from sentryfuse_ros.training.data import LabelledTensors, check_same_task, load_labelled_split


def configure_parser(parser: argparse.ArgumentParser) -> None:
    defaults = GateTrainingConfig()
    parser.add_argument("--checkpoint", type=Path, default=shipped_checkpoint(), help="SentryAttend backbone")
    parser.add_argument("--out", type=Path,
                        help="where to write the gate (default: sentrygate.safetensors beside the checkpoint, "
                             "where inference_node looks for it)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="picks the calibration examples and the gate's init")
    parser.add_argument("--examples", type=int, default=defaults.examples_per_subset, help="calibration examples per subset")
    parser.add_argument("--calibration-split", choices=("val", "train"), default="val",
                        help="where the targets are measured: half of the validation split (the other half is held "
                             "out; the baselines calibrate on this split too) or the training split (the backbone "
                             "has fit it, so its gradients understate what matters on new data)")
    parser.add_argument("--channel-target", choices=CHANNEL_CRITERIA, default=defaults.channel_target,
                        help="channel importance: Fisher (squared) or Taylor (absolute) mask gradients")
    parser.add_argument("--steps", type=int, default=defaults.fit_steps, help="optimisation steps of the fit")
    parser.add_argument("--budget-step", type=float, default=defaults.budget_step, help="iterative pruning step")
    parser.add_argument("--max-budget", type=float, default=defaults.max_budget, help="largest budget trained")
    parser.add_argument("--head-target", choices=HEAD_CRITERIA, default=defaults.head_target,
                        help="score heads by measured removal loss (ablation), Fisher or Taylor mask gradients")
    parser.add_argument("--data", default="digits",
                        help="dataset the backbone was trained on: digits (the benchmark) or a recorded dataset's name")
    parser.add_argument("--one-shot", action="store_true",
                        help="measure importance once on the unpruned backbone instead of after every pruning step")


def _calibration(labelled: LabelledTensors) -> Calibration:
    return Calibration(labelled.inputs, labelled.labels)


def run(args: argparse.Namespace) -> int:
    config = GateTrainingConfig(
        examples_per_subset=args.examples,
        fit_steps=args.steps,
        budget_step=args.budget_step,
        max_budget=args.max_budget,
        head_target=args.head_target,
        channel_target=args.channel_target,
        one_shot=args.one_shot,
        seed=args.seed,
    )
    backbone = load_checkpoint(args.checkpoint).model
    try:
        val_data = load_labelled_split("val", args.data)
        check_same_task(backbone.config.input, val_data, args.data)
    except DatasetError as error:
        print(f"sentryfuse gate train: error: {error}", file=sys.stderr)
        return 2
    val = _calibration(val_data)
    if args.calibration_split == "val":  # two disjoint halves
        calibration, heldout = val.halves(seed=args.seed)
    else:
        calibration, heldout = _calibration(load_labelled_split("train", args.data)), val
    started = time.perf_counter()
    gate, report = train_gate(backbone, calibration, heldout, config)
    report["calibration_split"] = args.calibration_split
    report["train_seconds"] = round(time.perf_counter() - started, 1)
    path = save_gate(gate, args.out or gate_beside(args.checkpoint), backbone_sha256=backbone_sha256(args.checkpoint), report=report)
    print(f"saved {path} ({report['train_seconds']} s); fit loss {report['fit_loss_first_last'][0]:.3f} -> "
          f"{report['fit_loss_first_last'][1]:.3f}")
    choice = report["refinement"]
    accuracy = ", ".join(f"{name} {100 * value:.1f}%" for name, value in choice["heldout_accuracy"].items())
    print(f"plan refinement: {choice['chosen']} (held-out accuracy of the gate's plans: {accuracy})")
    print(f"Spearman vs {config.head_target}/{config.channel_target} importance measured on held-out data under each "
          "subset (heads / channels), of the gate and of the same importance measured once with every modality:")
    print(f"{'subset':<18} {'gate':>13} {'static':>13} {'plan agreement':>15}")
    for subset, row in report["subsets"].items():
        print(
            f"{subset:<18} {row['gate_spearman_heads']:6.2f}/{row['gate_spearman_channels']:5.2f} "
            f"{row['static_spearman_heads']:6.2f}/{row['static_spearman_channels']:5.2f} "
            f"{row['train_plan_agreement']:15.3f}"
        )
    return 0
