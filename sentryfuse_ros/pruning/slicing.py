"""Apply a PrunePlan to SentryAttend, either as masks or physically (Torch-Pruning style).

`masked_model` keeps every weight and zeroes pruned heads/channels through the model's masks:
the reference semantics. `sliced_model` builds a genuinely smaller network: the Q and O
projections lose the pruned heads' rows/columns, K/V groups no query head reads any more are
dropped from the K and V projections, the FFN loses rows of `up` and columns of `down`, and the
config records each layer's new shape so the result saves and loads like any checkpoint.
Output scales and bias corrections fold into the output projections, so both agree exactly.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import Tensor, nn

from sentryfuse_ros.model.attention import GroupedQueryAttention
from sentryfuse_ros.model.config import LayerShape
from sentryfuse_ros.model.feedforward import FeedForward
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.plan import LayerPlan, PrunePlan


def layer_widths(model: SentryAttend) -> tuple[list[int], list[int]]:
    """(heads per layer, FFN channels per layer) of a model."""
    shapes = model.config.layer_shapes()
    return [shape.n_heads for shape in shapes], [shape.ffn_dim for shape in shapes]


def _check_plan_fits(model: SentryAttend, plan: PrunePlan) -> None:
    heads, channels = layer_widths(model)
    if len(plan.layers) != len(heads):
        raise ValueError(f"plan has {len(plan.layers)} layers, model has {len(heads)}")
    for index, (layer, n_heads, n_channels) in enumerate(zip(plan.layers, heads, channels)):
        if not layer.kept_heads or not layer.kept_channels:
            raise ValueError(f"plan removes every head or channel of layer {index}")
        if max(layer.kept_heads) >= n_heads or max(layer.kept_channels) >= n_channels:
            raise ValueError(f"plan keeps structures layer {index} does not have")


@torch.no_grad()
def masked_model(model: SentryAttend, plan: PrunePlan) -> SentryAttend:
    """A copy of `model` with the plan applied through masks and bias corrections."""
    _check_plan_fits(model, plan)
    masked = copy.deepcopy(model).eval()
    heads, channels = layer_widths(model)
    masked.set_masks(plan.head_masks(heads), plan.channel_masks(channels))
    for block, layer in zip(masked.blocks, plan.layers):
        if layer.attn_bias_correction is not None:
            block.attn.o.bias += layer.attn_bias_correction
        if layer.ffn_bias_correction is not None:
            block.ffn.down.bias += layer.ffn_bias_correction
    return masked


@torch.no_grad()
def sliced_model(model: SentryAttend, plan: PrunePlan) -> SentryAttend:
    """A new, physically smaller SentryAttend equal in output to `masked_model(model, plan)`."""
    _check_plan_fits(model, plan)
    shapes = model.config.layer_shapes()
    new_shapes = tuple(_sliced_shape(shape, layer) for shape, layer in zip(shapes, plan.layers))
    sliced = SentryAttend(replace(model.config, layers=new_shapes)).eval()
    # Everything outside the encoder layers (tokenizers, CLS/summary tokens, norms, classifier)
    # is unchanged; load it by name and let the layers be filled in below.
    outside = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")}
    sliced.load_state_dict(outside, strict=False)
    for source, target, layer in zip(model.blocks, sliced.blocks, plan.layers):
        target.attn_norm.load_state_dict(source.attn_norm.state_dict())
        target.ffn_norm.load_state_dict(source.ffn_norm.state_dict())
        _slice_attention(source.attn, target.attn, layer)
        _slice_ffn(source.ffn, target.ffn, layer)
    return sliced


def _sliced_shape(shape: LayerShape, layer: LayerPlan) -> LayerShape:
    kept_groups = layer.kept_groups(shape.head_group)
    return LayerShape(
        n_heads=len(layer.kept_heads),
        n_kv_groups=len(kept_groups),
        head_group=tuple(kept_groups.index(shape.head_group[h]) for h in layer.kept_heads),
        ffn_dim=len(layer.kept_channels),
    )


def _rows(head_indices: list[int], head_dim: int) -> Tensor:
    """Row indices of the given heads (or groups) in a (n * head_dim)-wide projection."""
    return torch.tensor([i * head_dim + j for i in head_indices for j in range(head_dim)], dtype=torch.long)


def _copy_linear(target: nn.Linear, weight: Tensor, bias: Tensor) -> None:
    target.weight.copy_(weight)
    target.bias.copy_(bias)


def _slice_attention(source: GroupedQueryAttention, target: GroupedQueryAttention, layer: LayerPlan) -> None:
    dim = source.head_dim
    heads = list(layer.kept_heads)
    groups = layer.kept_groups(source.head_group.tolist())
    # The source's own mask values (e.g. an earlier plan) and this plan's scales both scale head outputs.
    head_scale = source.head_mask[heads].clone()
    if layer.head_scales is not None:
        head_scale *= torch.tensor(layer.head_scales, dtype=head_scale.dtype)
    head_rows, group_rows = _rows(heads, dim), _rows(groups, dim)
    _copy_linear(target.q, source.q.weight[head_rows], source.q.bias[head_rows])
    _copy_linear(target.k, source.k.weight[group_rows], source.k.bias[group_rows])
    _copy_linear(target.v, source.v.weight[group_rows], source.v.bias[group_rows])
    o_weight = source.o.weight[:, head_rows] * head_scale.repeat_interleave(dim)
    o_bias = source.o.bias.clone()
    if layer.attn_bias_correction is not None:
        o_bias += layer.attn_bias_correction
    _copy_linear(target.o, o_weight, o_bias)


def _slice_ffn(source: FeedForward, target: FeedForward, layer: LayerPlan) -> None:
    channels = torch.tensor(layer.kept_channels, dtype=torch.long)
    channel_scale = source.ffn_mask[channels].clone()
    if layer.channel_scales is not None:
        channel_scale *= torch.tensor(layer.channel_scales, dtype=channel_scale.dtype)
    _copy_linear(target.up, source.up.weight[channels], source.up.bias[channels])
    down_bias = source.down.bias.clone()
    if layer.ffn_bias_correction is not None:
        down_bias += layer.ffn_bias_correction
    _copy_linear(target.down, source.down.weight[:, channels] * channel_scale, down_bias)


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def weight_bytes(model: nn.Module) -> int:
    """Bytes of a model's parameters and buffers (masks included), as held in memory."""
    return sum(tensor.numel() * tensor.element_size() for tensor in (*model.parameters(), *model.buffers()))
