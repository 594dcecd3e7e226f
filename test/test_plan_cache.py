"""The plan cache builds each situation once and hands back the same sliced model after."""

import torch

from sentryfuse_ros.modalities import MODALITY_SUBSETS
from conftest import TINY
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.gate_training import gate_config_for
from sentryfuse_ros.pruning.plan_cache import PlanCache



def _cache():
    torch.manual_seed(0)
    backbone = SentryAttend(TINY).eval()
    return PlanCache(backbone, SentryGate(gate_config_for(backbone, hidden=16)))


def test_cached_plans_are_reused_and_smaller():
    cache = _cache()
    first = cache.get(("audio", "camera"), 0.5)
    assert first.plan_id == "camera+audio@0.50"
    assert cache.get(["camera", "audio"], 0.5000001) is first
    assert first.kept_parameters < first.total_parameters
    unpruned = cache.get(("camera",), 0.0)
    assert unpruned.model is cache.backbone and unpruned.kept_parameters == unpruned.total_parameters


def test_prebuild_covers_every_situation_and_counts_memory_once():
    cache = _cache()
    plans = cache.prebuild(MODALITY_SUBSETS, (0.0, 0.3, 0.6))
    assert len({plan.plan_id for plan in plans}) == 21 == len(cache.plans())
    shared_backbone = sum(plan.weight_bytes for plan in plans if plan.ratio == 0.0) / 7
    assert cache.memory_bytes() == sum(plan.weight_bytes for plan in plans if plan.ratio > 0) + shared_backbone
    assert all(not parameter.requires_grad for plan in plans for parameter in plan.model.parameters())
