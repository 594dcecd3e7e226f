"""Kwon et al. 2022's mask tuning: per layer, least-squares output scales for the kept structures.

A sublayer's output is linear in its masks: attention adds sum_h m_h (W_o[:, h] head_h) to the
residual stream, the FFN adds sum_c m_c (W_down[:, c] hidden_c). Layer by layer, the pruned
("student") model's kept masks are solved for so that each sublayer's output (residual included)
reconstructs the unpruned ("teacher") model's on calibration tokens. The student runs with the
scales already tuned in earlier sublayers, so each solve also corrects the error accumulated
upstream. Solves go through the normal equations: for FFN channels
A^T A = (H^T H) * (W^T W), with no (tokens x d_model) x channels matrix ever built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.plan import PrunePlan
from sentryfuse_ros.pruning.slicing import masked_model

# Ridge towards scale 1, relative to the mean diagonal of A^T A: keeps nearly collinear
# structures from trading huge opposite scales.
RIDGE = 1e-3
# Kwon et al. give up on a solve outside this range; we keep that layer's plain mask instead.
MAX_SCALE = 10.0


class _Capture:
    """Forward hooks on one encoder block recording what the least-squares problems need."""

    def __init__(self, block):
        self.values: dict[str, Tensor] = {}
        self.handles = [
            block.register_forward_pre_hook(lambda _m, args: self._keep("input", args[0])),
            block.attn.head_output.register_forward_hook(lambda _m, _i, out: self._keep("heads", out)),
            block.ffn_norm.register_forward_pre_hook(lambda _m, args: self._keep("after_attn", args[0])),
            block.ffn.hidden.register_forward_hook(lambda _m, _i, out: self._keep("hidden", out)),
            block.register_forward_hook(lambda _m, _i, out: self._keep("output", out)),
        ]

    def _keep(self, key: str, value: Tensor) -> None:
        self.values[key] = value.detach()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _run(model: SentryAttend, layer: int, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    capture = _Capture(model.blocks[layer])
    try:
        model(inputs)
    finally:
        capture.remove()
    return capture.values


def _solve(ata: Tensor, atb: Tensor) -> Tensor | None:
    ridge = RIDGE * ata.diagonal().mean().clamp_min(1e-12)
    eye = torch.eye(len(atb), dtype=ata.dtype)
    try:
        scales = torch.linalg.solve(ata + ridge * eye, atb + ridge)
    except RuntimeError:  # singular even with the ridge
        return None
    if not torch.isfinite(scales).all() or scales.abs().max() > MAX_SCALE:
        return None
    return scales


def _head_equations(model: SentryAttend, layer: int, kept: list[int], teacher: dict, student: dict):
    attn = model.blocks[layer].attn
    # Contribution of each kept head to the attention output, per token: (B, k, T, d_model).
    o_per_head = attn.o.weight.detach().view(attn.o.out_features, attn.n_heads, attn.head_dim)[:, kept]
    contributions = torch.einsum("bhtj,ohj->bhto", student["heads"][:, kept].double(), o_per_head.double())
    target = (teacher["after_attn"] - student["input"] - attn.o.bias).double()
    ata = torch.einsum("bhto,bgto->hg", contributions, contributions)
    return ata, torch.einsum("bhto,bto->h", contributions, target)


def _channel_equations(model: SentryAttend, layer: int, kept: list[int], teacher: dict, student: dict):
    ffn = model.blocks[layer].ffn
    hidden = student["hidden"][..., kept].flatten(0, 1).double()  # (tokens, k)
    down = ffn.down.weight.detach()[:, kept].double()  # (d_model, k)
    target = (teacher["output"] - student["after_attn"] - ffn.down.bias).flatten(0, 1).double()
    return (hidden.T @ hidden) * (down.T @ down), (hidden * (target @ down)).sum(dim=0)


@torch.no_grad()
def tune_masks(model: SentryAttend, plan: PrunePlan, batches: list[tuple[Mapping[str, Tensor], Tensor]]) -> PrunePlan:
    """`plan` with least-squares head_scales and channel_scales, fitted on `batches`."""
    model = model.eval()
    student = masked_model(model, plan)
    layers = list(plan.layers)
    for index, layer_plan in enumerate(layers):
        steps = (
            ("head_scales", layer_plan.kept_heads, _head_equations, student.blocks[index].attn.head_mask),
            ("channel_scales", layer_plan.kept_channels, _channel_equations, student.blocks[index].ffn.ffn_mask),
        )
        for field, kept, equations, student_mask in steps:
            kept = list(kept)
            ata = atb = 0.0
            for inputs, _labels in batches:
                teacher_values, student_values = _run(model, index, inputs), _run(student, index, inputs)
                batch_ata, batch_atb = equations(model, index, kept, teacher_values, student_values)
                ata, atb = ata + batch_ata, atb + batch_atb
            scales = _solve(ata, atb)
            if scales is None:
                continue
            student_mask[kept] = scales.float()
            layers[index] = replace(layers[index], **{field: tuple(scales.tolist())})
    return replace(plan, layers=tuple(layers))
