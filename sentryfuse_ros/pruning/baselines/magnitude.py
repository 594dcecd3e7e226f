"""Weight-magnitude pruning: a structure's score is the size of the weights that carry it.

An FFN channel is a rank-one path x -> up row -> GELU -> down column, so its score is
||up row|| x ||down column||: the product of the norms bounds how much it can move the output.
A head is scored the same way, input side times output side:
||(q rows, share of k rows, share of v rows)|| x ||o columns||. Its K/V group's rows serve every
head of the group, so each head is charged 1/n of their squared norm (n = heads in the group),
which keeps a head's input norm comparable between GQA groups of different sizes.
Data-free and seed-independent.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.method import ScoredMethod, Scores


def head_magnitudes(model: SentryAttend) -> list[Tensor]:
    scores = []
    for block, shape in zip(model.blocks, model.config.layer_shapes()):
        attn, dim = block.attn, model.config.head_dim
        q_rows = attn.q.weight.detach().view(shape.n_heads, dim, -1).square().sum(dim=(1, 2))
        k_rows = attn.k.weight.detach().view(shape.n_kv_groups, dim, -1).square().sum(dim=(1, 2))
        v_rows = attn.v.weight.detach().view(shape.n_kv_groups, dim, -1).square().sum(dim=(1, 2))
        o_columns = attn.o.weight.detach().view(-1, shape.n_heads, dim).square().sum(dim=(0, 2))
        group = attn.head_group
        heads_in_group = torch.bincount(group, minlength=shape.n_kv_groups).to(k_rows.dtype)
        shared = (k_rows + v_rows)[group] / heads_in_group[group]
        scores.append((q_rows + shared).sqrt() * o_columns.sqrt())
    return scores


def channel_magnitudes(model: SentryAttend) -> list[Tensor]:
    return [
        block.ffn.up.weight.detach().norm(dim=1) * block.ffn.down.weight.detach().norm(dim=0) for block in model.blocks
    ]


class MagnitudePruning(ScoredMethod):
    name = "magnitude"

    def scores(self, model, subset, calibration, seed) -> Scores:
        return Scores(head_magnitudes(model), channel_magnitudes(model))
