"""FLAP (An et al. 2024): fluctuation-based scores with bias compensation.

A structure whose output barely fluctuates around its mean can be replaced by that mean, which
a bias absorbs. FLAP's weighted input feature variance scores each input column j of an output
projection W (attention `o`, FFN `down`) by Var(x_j) x ||W[:, j]||^2, with the variance taken
over calibration tokens; a head sums its head_dim columns. The removed structures' mean outputs
are folded into the output biases (W[:, removed] @ mean(x_removed)). Calibration data holds every
modality: the plan is static. FLAP's own cross-layer step standardises scores per layer; here
plan_from_scores' per-layer normalisation takes its place, as for every method.
"""

from __future__ import annotations

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.activation_stats import ActivationStats, activation_stats
from sentryfuse_ros.pruning.bias_compensation import with_bias_compensation
from sentryfuse_ros.pruning.method import ScoredMethod, Scores
from sentryfuse_ros.pruning.plan import PrunePlan


def fluctuation_scores(model: SentryAttend, stats: ActivationStats):
    head_scores, channel_scores = [], []
    for block, head_var, channel_var in zip(model.blocks, stats.head_var, stats.channel_var):
        n_heads, head_dim = head_var.shape
        o_columns = block.attn.o.weight.detach().square().sum(dim=0).view(n_heads, head_dim)
        head_scores.append((head_var * o_columns).sum(dim=1))
        channel_scores.append(channel_var * block.ffn.down.weight.detach().square().sum(dim=0))
    return head_scores, channel_scores


class Flap(ScoredMethod):
    def __init__(self, name: str = "flap", compensate: bool = True):
        self.name = name
        self.compensate = compensate

    def scores(self, model, subset, calibration, seed) -> Scores:
        stats = activation_stats(model, calibration.batches())
        return Scores(*fluctuation_scores(model, stats), measured=stats)

    def refine(self, model, plan, scores, calibration) -> PrunePlan:
        stats = scores.measured
        return with_bias_compensation(model, plan, stats.head_mean, stats.channel_mean) if self.compensate else plan
