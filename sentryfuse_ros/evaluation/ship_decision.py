"""`sentryfuse gate decide`: should a backbone and its gate replace the shipped pair?

    sentryfuse gate decide --candidate runs/joint/sentryfuse-joint.safetensors

Both pairs' SentryGate plans (each gate beside its checkpoint, refined as it chose) are
physically sliced and measured on the validation split, never the test split, for every modality
subset at each power level's shipped prune ratio (inference_node's `policy.<level>.prune_ratio`
defaults) and at the evaluation grid's ratios. The candidate is shipped only if it is more
accurate than the current pair at every level that prunes, and loses at most
`UNPRUNED_TOLERANCE` unpruned (mean over the subsets, and with every modality). Prints a table
and the verdict, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

UNPRUNED_TOLERANCE = 0.005  # half a point
REPORT_RATIOS = (0.2, 0.4, 0.6, 0.8)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidate", type=Path, required=True, help="SentryAttend checkpoint, its gate beside it")
    parser.add_argument("--current", type=Path, help="the pair it would replace (default: the shipped checkpoint)")
    parser.add_argument("--data", default="digits", help="dataset whose validation split decides")
    parser.add_argument("--examples", type=int, help="the first N validation samples only (quick runs; default all)")
    parser.add_argument("--json", type=Path, help="also write the figures and the verdict here")


@dataclass(frozen=True)
class Decision:
    ship: bool
    reasons: list[str]


def level_ratios() -> dict[str, float]:
    """Each power level's shipped prune ratio."""
    from sentryfuse_ros.nodes.power_policy import POLICY_DEFAULTS  # pure Python: no rclpy for an offline decision

    return {level: values[0] for level, values in POLICY_DEFAULTS.items()}


def load_pair(checkpoint: Path):
    """(backbone, its gate as a pruning method); CheckpointError if either is missing or they do not match."""
    from sentryfuse_ros.model.checkpoint import load_checkpoint
    from sentryfuse_ros.pruning.sentry_gate_method import SentryGateMethod

    return load_checkpoint(checkpoint).model.eval(), SentryGateMethod(backbone_path=checkpoint)


def plan_accuracy(model, method, inputs, labels, ratios) -> dict[float, dict[str, float]]:
    """{ratio: {subset: accuracy}} of the gate's sliced plans (ratio 0: the unpruned backbone)."""
    from sentryfuse_ros.modalities import subset_name, subsets_of
    from sentryfuse_ros.pruning.slicing import sliced_model
    from sentryfuse_ros.training.evaluate import accuracy

    figures = {}
    for ratio in ratios:
        by_subset = {}
        for subset in subsets_of(model.config.modalities):
            pruned = model if ratio == 0 else sliced_model(model, method.plan(model, subset, ratio, None, 0))
            by_subset[subset_name(subset)] = accuracy(pruned, inputs, labels, subset)
        figures[ratio] = by_subset
    return figures


def decide(candidate: dict[float, dict[str, float]], current: dict[float, dict[str, float]],
           levels: dict[str, float], full_set: str) -> Decision:
    reasons, ship = [], True
    loss = mean(current[0.0].values()) - mean(candidate[0.0].values())
    loss_full = current[0.0][full_set] - candidate[0.0][full_set]
    for what, value in (("mean over subsets", loss), ("with every modality", loss_full)):
        fine = value <= UNPRUNED_TOLERANCE
        ship &= fine
        reasons.append(f"unpruned, {what}: {-100 * value:+.1f} points ({'within' if fine else 'beyond'} "
                       f"-{100 * UNPRUNED_TOLERANCE:.1f})")
    for level, ratio in levels.items():
        if ratio == 0:
            continue
        gain = mean(candidate[ratio].values()) - mean(current[ratio].values())
        ship &= gain > 0
        reasons.append(f"{level} (ratio {ratio:g}): {100 * gain:+.1f} points ({'wins' if gain > 0 else 'does not win'})")
    return Decision(ship, reasons)


def run(args: argparse.Namespace) -> int:
    from sentryfuse_ros.data.recorded import DatasetError
    from sentryfuse_ros.model.checkpoint import CheckpointError, shipped_checkpoint
    from sentryfuse_ros.modalities import subset_name
    from sentryfuse_ros.training.data import check_same_task, load_labelled_split

    current_path = args.current or shipped_checkpoint()
    levels = level_ratios()
    ratios = sorted({0.0, *levels.values(), *REPORT_RATIOS})
    try:
        # Both pairs load before anything is measured, so a bad path fails at once.
        pairs = {"current": load_pair(current_path), "candidate": load_pair(args.candidate)}
        val = load_labelled_split("val", args.data)
        if args.examples is not None:
            val = val.head(args.examples)
        for model, _method in pairs.values():
            check_same_task(model.config.input, val, args.data)
    except (DatasetError, CheckpointError) as error:
        print(f"sentryfuse gate decide: error: {error}", file=sys.stderr)
        return 2
    figures = {name: plan_accuracy(model, method, val.inputs, val.labels, ratios)
               for name, (model, method) in pairs.items()}
    full_set = subset_name(val.spec.modalities)
    print(f"validation accuracy %, mean over subsets (n={len(val)}): current {current_path}, candidate {args.candidate}")
    print(f"{'ratio':>6} {'current':>8} {'candidate':>10}")
    for ratio in ratios:
        print(f"{ratio:6g} {100 * mean(figures['current'][ratio].values()):8.1f} "
              f"{100 * mean(figures['candidate'][ratio].values()):10.1f}")
    decision = decide(figures["candidate"], figures["current"], levels, full_set)
    for reason in decision.reasons:
        print(f"  {reason}")
    print("verdict: ship the candidate" if decision.ship else "verdict: keep the current pair")
    if args.json:
        document = {"current": str(current_path), "candidate": str(args.candidate), "levels": levels,
                    "validation_accuracy": {name: {f"{r:g}": v for r, v in f.items()} for name, f in figures.items()},
                    "ship": decision.ship, "reasons": decision.reasons}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2))
    return 0
