"""A pruning plan: which attention heads and FFN channels of each layer survive, and how.

Every method (SentryGate and all baselines) produces per-layer scores; `plan_from_scores` turns
them into a plan the same way for all of them, so methods differ only in their scores:

* scores are normalised per layer (divided by the layer's mean), so "twice as important as
  this layer's average" compares across layers whatever a method's raw scale is;
* round(ratio x total) heads and round(ratio x total) FFN channels are removed globally,
  lowest normalised score first, keeping at least `min_heads` heads and `min_channels`
  channels per layer so no layer vanishes;
* a K/V group is removed when every query head reading it is removed.

A plan may also carry per-structure output scales (least-squares mask tuning) and per-layer
bias corrections (FLAP's bias compensation); both fold into the sliced weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LayerPlan:
    kept_heads: tuple[int, ...]
    kept_channels: tuple[int, ...]
    # Multipliers for the kept heads' / channels' outputs (None = 1). Same order as kept_*.
    head_scales: tuple[float, ...] | None = None
    channel_scales: tuple[float, ...] | None = None
    # Added to the attention / FFN output bias to stand in for removed structures (None = 0).
    attn_bias_correction: Tensor | None = None
    ffn_bias_correction: Tensor | None = None

    def kept_groups(self, head_group: Sequence[int]) -> list[int]:
        """The K/V groups that survive, in order: those some kept query head reads
        (`head_group[h]` is the group head h reads)."""
        return sorted({int(head_group[h]) for h in self.kept_heads})


@dataclass(frozen=True)
class PrunePlan:
    layers: tuple[LayerPlan, ...]
    ratio: float

    def head_masks(self, heads_per_layer: Sequence[int]) -> list[Tensor]:
        return [_mask(n, layer.kept_heads, layer.head_scales) for n, layer in zip(heads_per_layer, self.layers)]

    def channel_masks(self, channels_per_layer: Sequence[int]) -> list[Tensor]:
        return [_mask(n, layer.kept_channels, layer.channel_scales) for n, layer in zip(channels_per_layer, self.layers)]


def _mask(size: int, kept: tuple[int, ...], scales: tuple[float, ...] | None) -> Tensor:
    mask = torch.zeros(size)
    mask[list(kept)] = torch.tensor(scales, dtype=mask.dtype) if scales is not None else 1.0
    return mask


def normalize_per_layer(scores: Sequence[Tensor]) -> list[Tensor]:
    """Each layer's scores divided by that layer's mean (all-zero layers stay zero)."""
    normalized = []
    for layer_scores in scores:
        layer_scores = layer_scores.detach().double().clamp_min(0)
        mean = layer_scores.mean()
        normalized.append(layer_scores / mean if mean > 0 else layer_scores)
    return normalized


def keep_top(scores: Sequence[Tensor], n_remove: int, minimum_per_layer: int) -> list[tuple[int, ...]]:
    """Indices kept per layer after removing the `n_remove` lowest normalised scores globally.

    Ties break towards lower layer and index, so a plan is deterministic for given scores.
    """
    normalized = normalize_per_layer(scores)
    candidates = sorted(
        (float(value), layer, index)
        for layer, layer_scores in enumerate(normalized)
        for index, value in enumerate(layer_scores.tolist())
    )
    remaining = [len(layer_scores) for layer_scores in normalized]
    removed: set[tuple[int, int]] = set()
    for _, layer, index in candidates:
        if len(removed) == n_remove:
            break
        if remaining[layer] > minimum_per_layer:
            removed.add((layer, index))
            remaining[layer] -= 1
    return [
        tuple(index for index in range(len(layer_scores)) if (layer, index) not in removed)
        for layer, layer_scores in enumerate(normalized)
    ]


def count_to_remove(total: int, ratio: float, minimum_per_layer: int, n_layers: int) -> int:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"prune ratio must be in [0, 1), got {ratio}")
    return min(round(ratio * total), total - minimum_per_layer * n_layers)


def plan_from_scores(
    head_scores: Sequence[Tensor],
    channel_scores: Sequence[Tensor],
    ratio: float,
    min_heads: int = 1,
    min_channel_fraction: float = 1 / 16,
) -> PrunePlan:
    """Binary plan removing round(ratio x total) heads and channels by globally ranked scores."""
    if len(head_scores) != len(channel_scores):
        raise ValueError("need head and channel scores for the same number of layers")
    n_layers = len(head_scores)
    min_channels = max(1, round(min(len(s) for s in channel_scores) * min_channel_fraction))
    total_heads = sum(len(s) for s in head_scores)
    total_channels = sum(len(s) for s in channel_scores)
    kept_heads = keep_top(head_scores, count_to_remove(total_heads, ratio, min_heads, n_layers), min_heads)
    kept_channels = keep_top(
        channel_scores, count_to_remove(total_channels, ratio, min_channels, n_layers), min_channels
    )
    return PrunePlan(tuple(LayerPlan(h, c) for h, c in zip(kept_heads, kept_channels)), ratio)
