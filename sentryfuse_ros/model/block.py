"""One pre-norm encoder layer: attention and feed-forward, each on a residual branch.

A layer pruned down to zero heads (or zero FFN channels) keeps only its residual path.
"""

from __future__ import annotations

from torch import Tensor, nn

from sentryfuse_ros.model.attention import GroupedQueryAttention, TokenLayout
from sentryfuse_ros.model.config import LayerShape
from sentryfuse_ros.model.feedforward import FeedForward


class EncoderBlock(nn.Module):
    def __init__(self, d_model: int, head_dim: int, shape: LayerShape, sparse: bool, dropout: float):
        super().__init__()
        has_attention, has_ffn = shape.n_heads > 0, shape.ffn_dim > 0
        self.attn_norm = nn.LayerNorm(d_model) if has_attention else None
        self.attn = GroupedQueryAttention(d_model, head_dim, shape, sparse) if has_attention else None
        self.ffn_norm = nn.LayerNorm(d_model) if has_ffn else None
        self.ffn = FeedForward(d_model, shape.ffn_dim) if has_ffn else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, layout: TokenLayout) -> Tensor:
        if self.attn is not None:
            x = x + self.dropout(self.attn(self.attn_norm(x), layout))
        if self.ffn is not None:
            x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return x
