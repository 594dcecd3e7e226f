"""A (sliced) SentryAttend as an ONNX graph for one live modality subset at batch 1.

Exporting `SentryAttend.forward` itself gives ~270 ONNX Runtime kernels, and at batch 1 the
small ones (head reshapes and transposes, per-modality attention blocks, concatenations) cost
as much as the matrix products, so pruning half the heads and channels buys little. The export
therefore traces `ExportGraph`, the same function written for a fixed subset and batch 1
(~115 kernels):

* tensors are 2-D (tokens, features), so every projection is one Gemm with its bias fused;
* Q, K and V come from one Gemm, computed transposed (features, tokens): per-head slices of
  its rows are Q^T / K^T / V^T directly, the K/V group each head reads is one Gather, and the
  attention products read them through transposed-operand MatMuls, with no Transpose kernel;
* the sparse pattern is the dense product plus a constant additive mask (-inf where
  `sparse_pattern_mask` forbids): four kernels per layer instead of four products, softmaxes
  and the concatenations of every block. The masked entries contribute exp(-inf) = 0, so the
  result equals the block-wise computation up to float rounding; the block-wise form measured
  slower here (more kernels outweigh the smaller products);
* the 1/sqrt(head_dim) query scale, head masks, FFN-channel masks, and the embedding biases
  (conv bias + position + modality embedding; summary bias + summary embedding) fold into
  the weights.

This is a second formulation of the forward pass, so runtime.py never uses the graph without
first checking it against the eager model on the plan it was built from.

The TorchScript-based exporter (`dynamo=False`) is used: it exports a plan in ~0.15 s, the
torch.export-based one took ~1.9 s (5 s for the first), too slow to build every plan ahead.
It needs the `onnx` package (not onnxscript); torch 2.13 still ships it, with a deprecation
notice that is silenced here.
"""

from __future__ import annotations

import io
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentryfuse_ros.model.attention import TokenLayout, sparse_pattern_mask
from sentryfuse_ros.model.block import EncoderBlock
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.tokenizers import PatchTokenizer

OPSET = 17  # the first with LayerNormalization


class _Tokenizer(nn.Module):
    """PatchTokenizer.forward for one (1, *sample_shape) input: (summary (1, d), patches (n, d))."""

    def __init__(self, tokenizer: PatchTokenizer):
        super().__init__()
        conv_shape = (1, *tokenizer.sample_shape) if tokenizer.add_channel_axis else tokenizer.sample_shape
        self.conv_shape = conv_shape
        # F.pad lists the last axis first; no padding at all is skipped (a no-op Pad is still a kernel).
        self.pad = None
        if any(tokenizer.padding):
            self.pad = [amount for pad in reversed(tokenizer.padding) for amount in (0, pad)]
        grid = [(size + pad) // step for size, pad, step in zip(conv_shape[1:], tokenizer.padding, tokenizer.patch)]
        self.patch_grid = [part for count, step in zip(grid, tokenizer.patch) for part in (count, step)]
        self.n_tokens = tokenizer.n_tokens
        hidden, _, out = tokenizer.summarize
        self.register_buffer("mean", tokenizer.input_mean.detach().clone())
        self.register_buffer("std", tokenizer.input_std.detach().clone())
        self.register_buffer("hidden_weight", hidden.weight.detach().clone())
        self.register_buffer("hidden_bias", hidden.bias.detach().clone())
        self.register_buffer("summary_weight", out.weight.detach().clone())
        self.register_buffer("summary_bias", (out.bias + tokenizer.summary_embedding).detach())
        self.register_buffer("embed_weight", tokenizer.embed.weight.detach().flatten(1).t().contiguous())
        embed_bias = tokenizer.embed.bias + tokenizer.position_embedding + tokenizer.modality_embedding
        self.register_buffer("embed_bias", embed_bias.detach())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = (x - self.mean) / self.std
        hidden = F.gelu(F.linear(x.flatten(1), self.hidden_weight, self.hidden_bias))
        summary = F.linear(hidden, self.summary_weight, self.summary_bias)
        x = x.reshape(self.conv_shape)
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = x.reshape(self.conv_shape[0], *self.patch_grid)
        # Tokens in the convolution's row-major patch order, each patch flattened (C, *patch).
        x = x.permute(1, 0, 2) if len(self.conv_shape) == 2 else x.permute(1, 3, 0, 2, 4)
        return summary, torch.addmm(self.embed_bias, x.reshape(self.n_tokens, -1), self.embed_weight)


class _Block(nn.Module):
    """EncoderBlock.forward on (T, d) tokens; `mask` is the additive sparse pattern (None: dense)."""

    def __init__(self, block: EncoderBlock, head_dim: int, n_tokens: int, mask: Tensor | None):
        super().__init__()
        self.n_tokens = n_tokens  # a constant, so the graph computes no shapes
        self.attention, self.feed_forward = block.attn is not None, block.ffn is not None
        if self.attention:
            attn = block.attn
            self.attn_norm, self.head_dim, self.n_heads = block.attn_norm, head_dim, attn.n_heads
            scale = head_dim**-0.5
            weight = torch.cat([attn.q.weight * scale, attn.k.weight, attn.v.weight])
            bias = torch.cat([attn.q.bias * scale, attn.k.bias, attn.v.bias])
            self.register_buffer("qkv_weight", weight.detach())
            self.register_buffer("qkv_bias", bias.detach().unsqueeze(1))  # a column: the output is transposed
            # Rows of the (H + 2G, head_dim, T) projection: every query head, then its K group, then its V group.
            n_heads, groups = attn.n_heads, attn.head_group.tolist()
            rows = [*range(n_heads), *(n_heads + g for g in groups), *(n_heads + attn.n_kv_groups + g for g in groups)]
            self.register_buffer("head_rows", torch.tensor(rows, dtype=torch.long))
            self.register_buffer("mask", mask)
            out_weight = attn.o.weight * attn.head_mask.repeat_interleave(head_dim)
            self.register_buffer("out_weight", out_weight.detach().t().contiguous())
            self.register_buffer("out_bias", attn.o.bias.detach().clone())
        if self.feed_forward:
            ffn = block.ffn
            self.ffn_norm = block.ffn_norm
            self.register_buffer("up_weight", ffn.up.weight.detach().clone())
            self.register_buffer("up_bias", ffn.up.bias.detach().clone())
            self.register_buffer("down_weight", (ffn.down.weight * ffn.ffn_mask).detach())
            self.register_buffer("down_bias", ffn.down.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        n_tokens = self.n_tokens
        if self.attention:
            projected = torch.addmm(self.qkv_bias, self.qkv_weight, self.attn_norm(x).t())
            projected = projected.reshape(-1, self.head_dim, n_tokens).index_select(0, self.head_rows)
            queries_t, keys_t, values_t = projected.split(self.n_heads)  # each (H, head_dim, T)
            scores = queries_t.transpose(1, 2) @ keys_t
            if self.mask is not None:
                scores = scores + self.mask
            heads_t = values_t @ scores.softmax(dim=-1).transpose(1, 2)  # (H, head_dim, T)
            x = x + torch.addmm(self.out_bias, heads_t.reshape(-1, n_tokens).t(), self.out_weight)
        if self.feed_forward:
            hidden = F.gelu(F.linear(self.ffn_norm(x), self.up_weight, self.up_bias))
            x = x + F.linear(hidden, self.down_weight, self.down_bias)
        return x


class ExportGraph(nn.Module):
    """`model(dict(zip(subset, inputs)))` for one fixed subset at batch 1, as `graph(*inputs)`."""

    def __init__(self, model: SentryAttend, subset: tuple[str, ...]):
        super().__init__()
        tokenizers = [model.tokenizers[name] for name in subset]
        self.tokenizers = nn.ModuleList(_Tokenizer(tokenizer) for tokenizer in tokenizers)
        layout = TokenLayout.from_counts(1 + len(subset), [tokenizer.n_tokens for tokenizer in tokenizers])
        mask = None
        if model.config.attention == "sparse_gqa":
            forbidden = ~sparse_pattern_mask(layout)
            mask = torch.zeros(forbidden.shape).masked_fill(forbidden, float("-inf"))
        self.n_global = layout.n_global
        self.register_buffer("cls", model.cls_token.detach().unsqueeze(0))
        head_dim = model.config.head_dim
        self.blocks = nn.ModuleList(_Block(block, head_dim, layout.n_tokens, mask) for block in model.blocks)
        self.norm, self.classifier = model.norm, model.classifier

    def forward(self, *inputs: Tensor) -> Tensor:
        summaries, patches = zip(*(tokenizer(x) for tokenizer, x in zip(self.tokenizers, inputs)))
        x = torch.cat([self.cls, *summaries, *patches])
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.norm(x[: self.n_global]).mean(dim=0, keepdim=True))


def export_onnx(model: SentryAttend, subset: tuple[str, ...]) -> bytes:
    """The serialized ONNX model: inputs named after the modalities of `subset` (each (1, ...)
    float32), output `logits` (1, n_classes)."""
    graph = ExportGraph(model, subset).eval()
    example = tuple(torch.zeros(1, *model.tokenizers[name].sample_shape) for name in subset)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice, every plan
        # F.pad's pads are reversed by a step -1 Slice the exporter cannot fold; ONNX Runtime folds it.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(
            graph,
            example,
            buffer,
            input_names=list(subset),
            output_names=["logits"],
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()
