"""The offline side of the live-vs-offline accuracy check: the plan each scored sample's live
prediction used, run on that sample's model tensors (the ones offline evaluation uses)."""

from __future__ import annotations

import torch

from sentryfuse_ros.bench.sample_ledger import ScoredSample
from sentryfuse_ros.data.preprocess import audio_tensor, image_tensor, imu_tensor
from sentryfuse_ros.modalities import CLASS_NAMES, MODALITIES
from sentryfuse_ros.nodes.sim_sources import SyntheticSource
from sentryfuse_ros.pruning.plan_cache import PlanCache


def dataset_inputs(split, indices: list[int]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rows `indices` of a TriModalSplit's stored tensors, and their labels."""
    tensors = split.tensors()
    rows = torch.tensor(indices, dtype=torch.long)
    return {name: tensors[name][rows] for name in MODALITIES}, [CLASS_NAMES[int(split.labels[i])] for i in indices]


def synthetic_inputs(source: SyntheticSource, indices: list[int]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The synthetic samples through the preprocessing the node applies (the source stores no tensors)."""
    samples = [source.sample(i) for i in indices]
    inputs = {
        "camera": torch.stack([image_tensor(s.image) for s in samples]),
        "imu": torch.stack([imu_tensor(s.imu, s.imu_rate_hz) for s in samples]),
        "audio": torch.stack([audio_tensor(s.audio, s.audio_rate_hz) for s in samples]),
    }
    return inputs, [CLASS_NAMES[s.label] for s in samples]


class PlanMismatch(RuntimeError):
    """The offline cache names a plan differently from the node: not the same weights or gate."""


def offline_labels(cache: PlanCache, samples: list[ScoredSample], inputs: dict[str, torch.Tensor]) -> list[str]:
    """Predicted class of samples[i] by its live plan, from inputs[...][i]; one batch per plan."""
    predicted = [""] * len(samples)
    by_plan: dict[str, list[int]] = {}
    for row, sample in enumerate(samples):
        by_plan.setdefault(sample.plan.plan_id, []).append(row)
    with torch.inference_mode():
        for plan_id, rows in by_plan.items():
            used = samples[rows[0]].plan
            plan = cache.get(used.subset, used.ratio)
            if plan.plan_id != plan_id:
                raise PlanMismatch(f"live plan {plan_id} is {plan.plan_id} offline")
            batch = {name: inputs[name][rows] for name in plan.subset}
            for row, class_id in zip(rows, plan.model(batch).argmax(dim=-1).tolist()):
                predicted[row] = CLASS_NAMES[class_id]
    return predicted
