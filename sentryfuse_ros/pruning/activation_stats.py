"""Mean and variance, over calibration examples and tokens, of every head and FFN channel output."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend


@dataclass
class ActivationStats:
    """Per layer: head_mean/head_var (H, head_dim) of the head outputs entering the output
    projection, channel_mean/channel_var (F,) of the FFN hidden channels entering `down`."""

    head_mean: list[Tensor]
    head_var: list[Tensor]
    channel_mean: list[Tensor]
    channel_var: list[Tensor]


class _Moments:
    """Running sums in float64: a few hundred examples x ~100 tokens of float32 lose digits otherwise."""

    def __init__(self):
        self.count, self.total, self.squares = 0, 0.0, 0.0

    def add(self, values: Tensor, reduce_dims: tuple[int, ...]) -> None:
        values = values.detach().double()
        self.count += values.numel() // values.sum(dim=reduce_dims).numel()
        self.total = self.total + values.sum(dim=reduce_dims)
        self.squares = self.squares + values.square().sum(dim=reduce_dims)

    def mean_var(self) -> tuple[Tensor, Tensor]:
        mean = self.total / self.count
        # Unbiased sample variance, as FLAP's fluctuation.
        var = (self.squares - self.count * mean.square()) / max(self.count - 1, 1)
        return mean.float(), var.clamp_min(0).float()


@torch.no_grad()
def activation_stats(model: SentryAttend, batches: Iterable[tuple[Mapping[str, Tensor], Tensor]]) -> ActivationStats:
    heads = [_Moments() for _ in model.blocks]
    channels = [_Moments() for _ in model.blocks]
    handles = []
    for block, head_moments, channel_moments in zip(model.blocks, heads, channels):
        # Head outputs are (B, H, T, head_dim), hidden channels (B, T, F).
        handles.append(
            block.attn.head_output.register_forward_hook(lambda _m, _i, out, s=head_moments: s.add(out, (0, 2)))
        )
        handles.append(
            block.ffn.hidden.register_forward_hook(lambda _m, _i, out, s=channel_moments: s.add(out, (0, 1)))
        )
    was_training = model.training
    model.eval()
    try:
        for inputs, _labels in batches:
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not heads[0].count:
        raise ValueError("no batches given: activation statistics need calibration data")
    head_mean, head_var = zip(*(m.mean_var() for m in heads))
    channel_mean, channel_var = zip(*(m.mean_var() for m in channels))
    return ActivationStats(list(head_mean), list(head_var), list(channel_mean), list(channel_var))
