"""The position-wise feed-forward network with prunable hidden channels.

Pruning interface: `ffn_mask` (F,) multiplies each hidden channel; `hidden` is an identity module
that sees the masked hidden activation (B, T, F) between `up` and `down`, for saliency hooks.
Slicing keeps rows of `up` and columns of `down`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int):
        super().__init__()
        self.up = nn.Linear(d_model, ffn_dim)
        self.activation = nn.GELU()
        self.register_buffer("ffn_mask", torch.ones(ffn_dim))
        self.hidden = nn.Identity()
        self.down = nn.Linear(ffn_dim, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.hidden(self.activation(self.up(x)) * self.ffn_mask))
