"""Accuracy of a model on labelled samples, for any modality subset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from sentryfuse_ros.modalities import MODALITY_SUBSETS, subset_name


@torch.inference_mode()
def accuracy(model: nn.Module, inputs: Mapping[str, Tensor], labels: Tensor, subset, batch_size: int = 512) -> float:
    """Fraction of samples classified correctly when only the modalities in `subset` are given."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        batch = {name: inputs[name][start : start + batch_size] for name in subset}
        correct += int((model(batch).argmax(dim=1) == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / len(labels)


def subset_accuracies(
    model: nn.Module,
    inputs: Mapping[str, Tensor],
    labels: Tensor,
    subsets: Iterable[tuple[str, ...]] = MODALITY_SUBSETS,
    batch_size: int = 512,
) -> dict[str, float]:
    """{'camera': acc, ..., 'camera+imu+audio': acc} for each subset."""
    return {subset_name(subset): accuracy(model, inputs, labels, subset, batch_size) for subset in subsets}
