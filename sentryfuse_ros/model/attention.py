"""Grouped-query attention, sparse (modality blocks) or dense, with prunable heads.

The token sequence is laid out as [global tokens | camera patches | imu patches | audio patches]
for the live modalities only; the global tokens are CLS and one summary token per live modality.

Sparse pattern: a modality's patch tokens attend to their own modality's patches and to the
global tokens; global tokens attend to everything. Each block is computed as its own, smaller
product, so the work really shrinks (no dense product followed by a mask). `sparse_pattern_mask`
states the same pattern as a (T, T) boolean matrix for reference computations.

Pruning interface: `head_mask` (H,) multiplies each head's output; `head_output` is an identity
module that sees the masked per-head outputs (B, H, T, head_dim) just before the output
projection, so forward/backward hooks on it read each head's activation and gradient.
`head_group` (H,) maps every query head to its K/V group, so a sliced layer may keep any number
of heads spread unevenly over its groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sentryfuse_ros.model.config import LayerShape


@dataclass(frozen=True)
class TokenLayout:
    """Where each part of the sequence sits: n_global leading tokens, then one span per live modality."""

    n_global: int
    modality_spans: tuple[tuple[int, int], ...]

    @classmethod
    def from_counts(cls, n_global: int, modality_token_counts: list[int]) -> TokenLayout:
        spans, start = [], n_global
        for count in modality_token_counts:
            spans.append((start, start + count))
            start += count
        return cls(n_global, tuple(spans))

    @property
    def n_tokens(self) -> int:
        return self.modality_spans[-1][1] if self.modality_spans else self.n_global


def sparse_pattern_mask(layout: TokenLayout) -> Tensor:
    """(T, T) bool, True where query row may attend to key column under the sparse pattern."""
    allowed = torch.zeros(layout.n_tokens, layout.n_tokens, dtype=torch.bool)
    allowed[: layout.n_global, :] = True
    for start, stop in layout.modality_spans:
        allowed[start:stop, : layout.n_global] = True
        allowed[start:stop, start:stop] = True
    return allowed


def _attend(queries: Tensor, keys: Tensor, values: Tensor) -> Tensor:
    # Queries arrive pre-scaled by 1/sqrt(head_dim).
    return (queries @ keys.transpose(-2, -1)).softmax(dim=-1) @ values


def dense_attention(queries: Tensor, keys: Tensor, values: Tensor, layout: TokenLayout) -> Tensor:
    return _attend(queries, keys, values)


def block_sparse_attention(queries: Tensor, keys: Tensor, values: Tensor, layout: TokenLayout) -> Tensor:
    """Attention under `sparse_pattern_mask(layout)`, one small product per modality block.

    queries, keys, values: (B, H, T, head_dim). Returns (B, H, T, head_dim).
    """
    n_global = layout.n_global
    global_keys, global_values = keys[:, :, :n_global], values[:, :, :n_global]
    outputs = [_attend(queries[:, :, :n_global], keys, values)]
    for start, stop in layout.modality_spans:
        block_keys = torch.cat([global_keys, keys[:, :, start:stop]], dim=2)
        block_values = torch.cat([global_values, values[:, :, start:stop]], dim=2)
        outputs.append(_attend(queries[:, :, start:stop], block_keys, block_values))
    return torch.cat(outputs, dim=2)


class GroupedQueryAttention(nn.Module):
    """H query heads reading G K/V groups through the `head_group` map; sparse or dense pattern."""

    def __init__(self, d_model: int, head_dim: int, shape: LayerShape, sparse: bool):
        super().__init__()
        self.head_dim = head_dim
        self.n_heads = shape.n_heads
        self.n_kv_groups = shape.n_kv_groups
        self.pattern = block_sparse_attention if sparse else dense_attention
        self.q = nn.Linear(d_model, shape.n_heads * head_dim)
        self.k = nn.Linear(d_model, shape.n_kv_groups * head_dim)
        self.v = nn.Linear(d_model, shape.n_kv_groups * head_dim)
        self.o = nn.Linear(shape.n_heads * head_dim, d_model)
        self.register_buffer("head_group", torch.tensor(shape.head_group, dtype=torch.long))
        self.register_buffer("head_mask", torch.ones(shape.n_heads))
        self.head_output = nn.Identity()

    def forward(self, x: Tensor, layout: TokenLayout) -> Tensor:
        batch, n_tokens, _ = x.shape
        queries = self.q(x).view(batch, n_tokens, self.n_heads, self.head_dim).transpose(1, 2)
        queries = queries * self.head_dim**-0.5
        # Each head reads its group's keys and values: a gather, no extra arithmetic.
        keys = self._per_head(self.k(x), batch, n_tokens)
        values = self._per_head(self.v(x), batch, n_tokens)
        heads = self.pattern(queries, keys, values, layout)
        heads = self.head_output(heads * self.head_mask.view(1, -1, 1, 1))
        return self.o(heads.transpose(1, 2).reshape(batch, n_tokens, self.n_heads * self.head_dim))

    def _per_head(self, grouped: Tensor, batch: int, n_tokens: int) -> Tensor:
        grouped = grouped.view(batch, n_tokens, self.n_kv_groups, self.head_dim).transpose(1, 2)
        return grouped.index_select(1, self.head_group)
