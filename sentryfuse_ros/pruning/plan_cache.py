"""Sliced models for every (live modality subset, prune ratio) the robot may need, built ahead.

Building a plan (gate forward, plan, slice, and the forward runtime: see runtime.py) takes
milliseconds to a few hundred; switching to a cached one is a dictionary lookup, so a sensor
dropout or a power-level change never waits for pruning.

`CachedPlan.forward` is what inference calls (batch 1, the plan's subset); `CachedPlan.model`
stays the torch module, for batched offline work, saliency hooks and weight counts. The default
runtime policy is "eager", so offline evaluation builds no ONNX graphs; batch-1 inference wants
"auto".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sentryfuse_ros.modalities import canonical_subset, subset_name
from sentryfuse_ros.model.checkpoint import backbone_sha256, load_checkpoint, shipped_checkpoint
from sentryfuse_ros.model.gate_checkpoint import gate_beside, load_gate
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.runtime import POLICIES, ForwardRuntime, RuntimeChoice, choose_runtime
from sentryfuse_ros.pruning.sentry_gate_method import gate_plan
from sentryfuse_ros.pruning.slicing import parameter_count, sliced_model, weight_bytes


@dataclass
class CachedPlan:
    plan_id: str
    subset: tuple[str, ...]
    ratio: float
    model: SentryAttend
    kept_parameters: int
    total_parameters: int
    build_ms: float  # slicing and the runtime choice together
    runtime_choice: RuntimeChoice

    @property
    def forward(self) -> ForwardRuntime:
        """The chosen runtime: inputs (modality -> (1, ...) tensor) -> logits (1, n_classes)."""
        return self.runtime_choice.runtime

    @property
    def runtime(self) -> str:
        return self.runtime_choice.runtime.name

    @property
    def weight_bytes(self) -> int:
        return weight_bytes(self.model)


def plan_id(subset, ratio: float) -> str:
    return f"{subset_name(subset)}@{ratio:.2f}"


class PlanCache:
    def __init__(self, backbone: SentryAttend, gate: SentryGate | None, runtime: str = "eager", num_threads: int = 1):
        """gate: None serves only unpruned plans (ratio 0); runtime: "eager", "onnxruntime" or "auto"
        (measure per plan, keep the fastest); num_threads: intra-op threads of each ONNX Runtime session."""
        if runtime not in POLICIES:
            raise ValueError(f"unknown runtime policy {runtime!r}; choose from {', '.join(POLICIES)}")
        self.backbone = backbone.eval()
        self.gate = gate.eval() if gate is not None else None
        self.runtime_policy = runtime
        self.num_threads = num_threads
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
        elif self.gate is None:
            raise ValueError(f"plan {key}: pruning needs a SentryGate, and this cache has none")
        else:
            model = sliced_model(self.backbone, gate_plan(self.gate, self.backbone, subset, ratio))
        model.requires_grad_(False)
        choice = choose_runtime(model, subset, self.runtime_policy, self.num_threads)
        build_ms = (time.perf_counter() - started) * 1e3
        return CachedPlan(key, subset, ratio, model, parameter_count(model), self.total_parameters, build_ms, choice)

    def prebuild(self, subsets, ratios) -> list[CachedPlan]:
        return [self.get(subset, ratio) for subset in subsets for ratio in ratios]

    def clear(self) -> None:
        """Forget every built plan (the backbone stays loaded)."""
        self._plans.clear()

    def plans(self) -> list[CachedPlan]:
        return list(self._plans.values())

    def memory_bytes(self) -> int:
        """Weight memory of every cached plan's torch model (the shared unpruned backbone counted
        once; ONNX Runtime sessions hold their own copies on top)."""
        seen, total = set(), 0
        for plan in self._plans.values():
            if id(plan.model) not in seen:
                seen.add(id(plan.model))
                total += plan.weight_bytes
        return total


def load_plan_cache(weights_path: str, gate_path: str, runtime: str = "eager", num_threads: int = 1,
                    prunes: bool = True) -> PlanCache:
    """A plan cache for these weights (empty: the shipped ones) and the gate trained for them
    (empty: the one beside the weights), whose plans run on `runtime`; CheckpointError if the
    files are unusable. What inference_node and base_station deploy. prunes=False: unpruned plans
    only, and no gate is read (a base station's larger model may have none)."""
    weights = Path(weights_path) if weights_path else shipped_checkpoint()
    backbone = load_checkpoint(weights).model
    gate = None
    if prunes:
        gate_file = Path(gate_path) if gate_path else gate_beside(weights)
        gate = load_gate(gate_file, expected_backbone_sha256=backbone_sha256(weights)).gate
    return PlanCache(backbone, gate, runtime=runtime, num_threads=num_threads)
