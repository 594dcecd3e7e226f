"""Kwon et al. 2022's mask rearrangement: within a layer, choose which structures to remove jointly.

The diagonal Fisher ranks structures one by one. Inside one layer the loss increase of removing
a set R is better approximated by the block-diagonal Fisher: ||sum_{i in R} g_i||^2, with g_i the
per-example gradients of mask i, so structures whose gradients cancel can go together. Keeping
each layer's removal count from the plan, a greedy pass (Kwon et al.'s) walks the remaining
structures in ascending Fisher order, adds each to R and drops whichever member of R then
minimises the objective.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from sentryfuse_ros.pruning.plan import PrunePlan
from sentryfuse_ros.pruning.saliency import MaskGradients


def rearranged_removal(gradients: Tensor, removed: list[int]) -> list[int]:
    """gradients (N, n) per-example mask gradients of one layer; returns the new removed set, same size."""
    if not removed or len(removed) == gradients.shape[1]:
        return removed
    vectors = gradients.T.double()  # (n, N)
    fisher = vectors.square().sum(dim=1)
    removed_set = set(removed)
    candidates = sorted((i for i in range(len(fisher)) if i not in removed_set), key=lambda i: float(fisher[i]))
    current = list(removed)
    for candidate in candidates:
        current.append(candidate)
        members = vectors[current]
        # Objective after dropping each member j: ||sum - g_j||^2.
        without_each = (members.sum(dim=0) - members).square().sum(dim=1)
        del current[int(without_each.argmin())]
    return sorted(current)


def rearrange(plan: PrunePlan, gradients: MaskGradients) -> PrunePlan:
    layers = []
    for layer, head_grads, channel_grads in zip(plan.layers, gradients.heads, gradients.channels):
        removed_heads = [h for h in range(head_grads.shape[1]) if h not in set(layer.kept_heads)]
        removed_channels = [c for c in range(channel_grads.shape[1]) if c not in set(layer.kept_channels)]
        new_removed_heads = set(rearranged_removal(head_grads, removed_heads))
        new_removed_channels = set(rearranged_removal(channel_grads, removed_channels))
        layers.append(
            replace(
                layer,
                kept_heads=tuple(h for h in range(head_grads.shape[1]) if h not in new_removed_heads),
                kept_channels=tuple(c for c in range(channel_grads.shape[1]) if c not in new_removed_channels),
            )
        )
    return replace(plan, layers=tuple(layers))
