"""Random pruning: uniform random scores, a new draw for every seed."""

from __future__ import annotations

import torch

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import PrunePlan, plan_from_scores


class RandomPruning:
    name = "random"
    subset_aware = False

    def plan(
        self, model: SentryAttend, subset: tuple[str, ...], ratio: float, calibration: Calibration, seed: int
    ) -> PrunePlan:
        generator = torch.Generator().manual_seed(seed)
        shapes = model.config.layer_shapes()
        head_scores = [torch.rand(shape.n_heads, generator=generator) for shape in shapes]
        channel_scores = [torch.rand(shape.ffn_dim, generator=generator) for shape in shapes]
        return plan_from_scores(head_scores, channel_scores, ratio)
