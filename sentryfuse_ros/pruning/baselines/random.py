"""Random pruning: uniform random scores, a new draw for every seed."""

from __future__ import annotations

import torch

from sentryfuse_ros.pruning.method import ScoredMethod, Scores


class RandomPruning(ScoredMethod):
    name = "random"

    def scores(self, model, subset, calibration, seed) -> Scores:
        generator = torch.Generator().manual_seed(seed)
        shapes = model.config.layer_shapes()
        head_scores = [torch.rand(shape.n_heads, generator=generator) for shape in shapes]
        return Scores(head_scores, [torch.rand(shape.ffn_dim, generator=generator) for shape in shapes])
