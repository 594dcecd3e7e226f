"""SentryGate as a pruning method: a plan from the gate's scores alone, zero-shot.

plan() reads neither calibration data nor gradients: the gate maps (live modalities, budget) to
scores, plan_from_scores keeps the top structures as for every other method, and the plan is
refined the way the gate chose on held-out data at training: nothing, bias compensation from the
per-subset mean activations stored in the gate, or the mask-tuning scales stored for that
subset and budget.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from torch import Tensor

from sentryfuse_ros.model.checkpoint import backbone_sha256, shipped_checkpoint
from sentryfuse_ros.model.gate_checkpoint import gate_beside, load_gate
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.bias_compensation import with_bias_compensation
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import PrunePlan, plan_from_scores


def gate_plan(gate: SentryGate, model: SentryAttend, subset, ratio: float, refinement: str | None = None) -> PrunePlan:
    """The gate's plan, refined the way the gate was trained to choose (`refinement` overrides it)."""
    scores = gate.scores(subset, ratio)
    plan = plan_from_scores(scores.heads, scores.channels, ratio)
    refinement = refinement or gate.config.refinement
    if refinement == "bias_compensation":
        return with_bias_compensation(model, plan, *gate.means_for(subset))
    if refinement == "mask_tuning":
        stored = gate.scales_for(subset, ratio)
        return with_scales(plan, *stored) if stored is not None else plan
    return plan


def with_scales(plan: PrunePlan, head_scales: list[Tensor], channel_scales: list[Tensor]) -> PrunePlan:
    """`plan` with output scales for its kept structures, picked from full per-layer scale vectors."""
    layers = tuple(
        replace(
            layer,
            head_scales=tuple(heads[list(layer.kept_heads)].tolist()),
            channel_scales=tuple(channels[list(layer.kept_channels)].tolist()),
        )
        for layer, heads, channels in zip(plan.layers, head_scales, channel_scales)
    )
    return replace(plan, layers=layers)


class SentryGateMethod:
    subset_aware = True

    def __init__(
        self,
        gate: SentryGate | None = None,
        gate_path: Path | None = None,
        backbone_path: Path | None = None,
        refinement: str | None = None,
        name: str = "sentrygate",
    ):
        """Use `gate`, or load the gate at `gate_path` (default: the one beside the backbone) after
        checking that it was trained for the backbone at `backbone_path` (default: shipped)."""
        if gate is None:
            backbone_path = backbone_path or shipped_checkpoint()
            gate = load_gate(gate_path or gate_beside(backbone_path),
                             expected_backbone_sha256=backbone_sha256(backbone_path)).gate
        self.name = name
        self.gate = gate
        self.refinement = refinement  # None: the gate's own choice

    def plan(
        self, model: SentryAttend, subset: tuple[str, ...], ratio: float, calibration: Calibration | None, seed: int
    ) -> PrunePlan:
        return gate_plan(self.gate, model, subset, ratio, self.refinement)
