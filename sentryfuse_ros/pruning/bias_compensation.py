"""Replace what pruning removes by its average: the bias compensation FLAP introduced.

A removed head or FFN channel stops contributing W_out[:, removed] @ a_removed to its layer's
output; adding W_out[:, removed] @ mean(a_removed) to the output bias keeps the layer's output
unbiased. Both FLAP (means from calibration data) and SentryGate (means stored per modality
subset, no data at deployment) use this.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.plan import PrunePlan


@torch.no_grad()
def with_bias_compensation(
    model: SentryAttend, plan: PrunePlan, head_means: list[Tensor], channel_means: list[Tensor]
) -> PrunePlan:
    """`plan` with per-layer bias corrections for every removed head (means (H, head_dim)) and channel (means (F,))."""
    layers = []
    for block, layer, head_mean, channel_mean in zip(model.blocks, plan.layers, head_means, channel_means):
        removed_heads = [h for h in range(head_mean.shape[0]) if h not in set(layer.kept_heads)]
        removed_channels = [c for c in range(channel_mean.shape[0]) if c not in set(layer.kept_channels)]
        head_dim = head_mean.shape[1]
        columns = [h * head_dim + j for h in removed_heads for j in range(head_dim)]
        attn_correction = block.attn.o.weight[:, columns] @ head_mean[removed_heads].reshape(-1)
        ffn_correction = block.ffn.down.weight[:, removed_channels] @ channel_mean[removed_channels]
        layers.append(replace(layer, attn_bias_correction=attn_correction, ffn_bias_correction=ffn_correction))
    return replace(plan, layers=tuple(layers))
