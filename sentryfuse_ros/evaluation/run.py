"""Run the evaluation grid on an injected model and data: plan, slice, measure test accuracy.

Every cell prunes the backbone with one method for one (modality subset, ratio, seed), builds
the physically sliced model (what deploys) and measures its accuracy on the test examples given
only that subset's modalities. A seed picks the calibration examples and the random baseline's
draw. Static methods (subset_aware = False) plan once per (ratio, seed) for all subsets, and an
identical plan (e.g. of a seed-independent method) is evaluated only once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor
from tqdm import tqdm

from sentryfuse_ros.evaluation.grid import (
    UNPRUNED,
    GridSpec,
    ResultsFile,
    Row,
    RowKey,
    method_fingerprint,
    model_digest,
    test_subsample,
)
from sentryfuse_ros.modalities import canonical_subset, subset_name
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.method import Calibration, PruningMethod
from sentryfuse_ros.pruning.plan import PrunePlan
from sentryfuse_ros.pruning.slicing import parameter_count, sliced_model
from sentryfuse_ros.training.evaluate import accuracy


def plan_digest(plan: PrunePlan) -> str:
    digest = hashlib.sha256()
    for layer in plan.layers:
        digest.update(repr((layer.kept_heads, layer.kept_channels, layer.head_scales, layer.channel_scales)).encode())
        for correction in (layer.attn_bias_correction, layer.ffn_bias_correction):
            digest.update(b"-" if correction is None else correction.detach().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class GridData:
    """What the grid runs on: the trained backbone, the test examples (inputs[name] is (N, ...),
    labels (N,)) and the pool calibration sets are drawn from."""

    model: SentryAttend
    test_inputs: Mapping[str, Tensor]
    test_labels: Tensor
    calibration_pool: Calibration


class _Evaluator:
    """Accuracy of plans on the test examples, each distinct (plan, subset) measured once."""

    def __init__(self, model: SentryAttend, inputs: Mapping[str, Tensor], labels: Tensor, batch_size: int):
        self.model, self.inputs, self.labels, self.batch_size = model, inputs, labels, batch_size
        self.measured: dict[tuple[str, str], tuple[float, int]] = {}

    def unpruned(self, subset: tuple[str, ...]) -> tuple[float, int]:
        return accuracy(self.model, self.inputs, self.labels, subset, self.batch_size), parameter_count(self.model)

    def pruned(self, plan: PrunePlan, subsets: list[tuple[str, ...]]) -> dict[tuple[str, ...], tuple[float, int]]:
        digest = plan_digest(plan)
        missing = [subset for subset in subsets if (digest, subset_name(subset)) not in self.measured]
        if missing:
            pruned = sliced_model(self.model, plan)
            for subset in missing:
                value = accuracy(pruned, self.inputs, self.labels, subset, self.batch_size)
                self.measured[(digest, subset_name(subset))] = (value, parameter_count(pruned))
        return {subset: self.measured[(digest, subset_name(subset))] for subset in subsets}


def evaluate_grid(
    data: GridData, spec: GridSpec, methods: Mapping[str, PruningMethod], results: ResultsFile,
    progress: bool = True, batch_size: int = 512,
) -> list[Row]:
    """Every row of the grid, computing only those not already in `results` (which gets them appended)."""
    model, test_inputs, test_labels = data.model.eval(), data.test_inputs, data.test_labels
    index = test_subsample(len(test_labels), spec.test_examples)
    if index is not None:
        test_inputs = {name: tensor[index] for name, tensor in test_inputs.items()}
        test_labels = test_labels[index]
    model_id, settings = model_digest(model), spec.settings_digest()
    subsets = [canonical_subset(subset) for subset in spec.subsets]
    done = results.read()
    fingerprints = {name: method_fingerprint(methods[name]) for name in spec.methods}

    def key(method: str, subset, ratio: float, seed: int) -> RowKey:
        fingerprint = fingerprints.get(method, "")
        return RowKey(model_id, settings, method, fingerprint, subset_name(subset), round(ratio, 6), seed)

    reference_keys = [key(UNPRUNED, subset, 0.0, 0) for subset in subsets]
    groups = [(name, seed, ratio) for name in spec.methods for seed in spec.seeds for ratio in spec.ratios]
    todo_reference = [subset for subset, k in zip(subsets, reference_keys) if k not in done]
    todo = {
        group: [subset for subset in subsets if key(group[0], subset, group[2], group[1]) not in done]
        for group in groups
    }
    bar = tqdm(
        total=len(todo_reference) + sum(len(s) for s in todo.values()),
        desc="eval",
        unit="cell",
        disable=not progress,
    )
    evaluator = _Evaluator(model, test_inputs, test_labels, batch_size)
    rows = dict(done)

    def record(row_key: RowKey, measured: tuple[float, int]) -> None:
        row = Row(row_key, measured[0], len(test_labels), measured[1])
        results.append(row)
        rows[row_key] = row
        bar.update(1)

    with bar:
        for subset in todo_reference:
            record(key(UNPRUNED, subset, 0.0, 0), evaluator.unpruned(subset))
        calibrations: dict[int, Calibration] = {}
        for (name, seed, ratio), missing in todo.items():
            if not missing:
                continue
            bar.set_postfix_str(f"{name} r={ratio} seed={seed}")
            method = methods[name]
            if seed not in calibrations:
                calibrations[seed] = data.calibration_pool.sample(spec.calibration_examples, seed)
            calibration = calibrations[seed]
            if method.subset_aware:
                for subset in missing:
                    plan = method.plan(model, subset, ratio, calibration, seed)
                    record(key(name, subset, ratio, seed), evaluator.pruned(plan, [subset])[subset])
            else:
                # A static plan ignores the subset: plan once; `subset` only satisfies the interface.
                plan = method.plan(model, missing[0], ratio, calibration, seed)
                for subset, measured in evaluator.pruned(plan, missing).items():
                    record(key(name, subset, ratio, seed), measured)
    wanted = set(reference_keys) | {
        key(name, subset, ratio, seed) for (name, seed, ratio) in groups for subset in subsets
    }
    return [row for row_key, row in rows.items() if row_key in wanted]
