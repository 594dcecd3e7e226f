"""Sliced models for every (live modality subset, prune ratio) the robot may need, built ahead.

Building a plan (gate forward, plan, slice) takes milliseconds; switching to a cached one is a
dictionary lookup, so a sensor dropout or a power-level change never waits for pruning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sentryfuse_ros.modalities import canonical_subset, subset_name
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.sentry_gate_method import gate_plan
from sentryfuse_ros.pruning.slicing import parameter_count, sliced_model


@dataclass
class CachedPlan:
    plan_id: str
    subset: tuple[str, ...]
    ratio: float
    model: SentryAttend
    kept_parameters: int
    total_parameters: int
    build_ms: float

    @property
    def weight_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.model.parameters(), *self.model.buffers()))


def plan_id(subset, ratio: float) -> str:
    return f"{subset_name(subset)}@{ratio:.2f}"


class PlanCache:
    def __init__(self, backbone: SentryAttend, gate: SentryGate):
        self.backbone = backbone.eval()
        self.gate = gate.eval()
        self.total_parameters = parameter_count(backbone)
        self._plans: dict[str, CachedPlan] = {}

    def get(self, subset, ratio: float) -> CachedPlan:
        """The plan for this situation, built now if it is not cached yet."""
        subset = canonical_subset(subset)
        ratio = round(float(ratio), 2)
        key = plan_id(subset, ratio)
        cached = self._plans.get(key)
        if cached is None:
            cached = self._plans[key] = self._build(subset, ratio, key)
        return cached

    def _build(self, subset: tuple[str, ...], ratio: float, key: str) -> CachedPlan:
        started = time.perf_counter()
        if ratio == 0.0:
            model = self.backbone  # nothing to remove: share the unpruned weights
        else:
            model = sliced_model(self.backbone, gate_plan(self.gate, self.backbone, subset, ratio))
        model.requires_grad_(False)
        build_ms = (time.perf_counter() - started) * 1e3
        return CachedPlan(key, subset, ratio, model, parameter_count(model), self.total_parameters, build_ms)

    def prebuild(self, subsets, ratios) -> list[CachedPlan]:
        return [self.get(subset, ratio) for subset in subsets for ratio in ratios]

    def clear(self) -> None:
        """Forget every built plan (the backbone stays loaded)."""
        self._plans.clear()

    def plans(self) -> list[CachedPlan]:
        return list(self._plans.values())

    def memory_bytes(self) -> int:
        """Weight memory of every cached plan (the shared unpruned backbone counted once)."""
        seen, total = set(), 0
        for plan in self._plans.values():
            if id(plan.model) not in seen:
                seen.add(id(plan.model))
                total += plan.weight_bytes
        return total
