"""What SentryGate learns from: per-subset importance under iterative pruning.

For one modality subset S, prune the backbone step by step (budget 0, 0.1, 0.2, ...): at each
step score every remaining head and FFN channel on calibration data holding only S's
modalities, and remove the lowest (through the same plan_from_scores every method uses, with
the removed structures' per-subset mean folded into the biases) to reach the next budget. The
target for budget b is the importance measured in the state pruned to b: structures removed on
the way read zero, so a plan built from it at b is the iterative plan, and the remaining
structures' order says what to remove next. Re-measuring after each removal is what one-shot
scores (the static baselines, and the per-subset oracle) cannot do.

Heads can be scored by measurement rather than a gradient estimate ("ablation"): removing a
whole head is a large change, and there are few heads, so each one's removal is measured
exactly, as the calibration loss with the head replaced by its per-subset mean output minus the
loss without that change. Otherwise heads, and always FFN channels, are scored from the
gradient of their masks: Fisher (mean squared, as Kwon et al.) or Taylor (mean absolute).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.bias_compensation import with_bias_compensation
from sentryfuse_ros.pruning.plan import plan_from_scores
from sentryfuse_ros.pruning.saliency import mask_gradients
from sentryfuse_ros.pruning.slicing import masked_model


@dataclass
class SaliencyTarget:
    budget: float
    heads: list[Tensor]  # per layer (H_l,)
    channels: list[Tensor]  # per layer (F_l,)


def budget_grid(step: float, max_budget: float) -> list[float]:
    count = int(round(max_budget / step))
    return [round(i * step, 6) for i in range(count + 1)]


Batches = list[tuple[Mapping[str, Tensor], Tensor]]


@torch.no_grad()
def _mean_loss(model: SentryAttend, batches: Batches) -> float:
    total = sum(F.cross_entropy(model(inputs), labels, reduction="sum").item() for inputs, labels in batches)
    return total / sum(len(labels) for _, labels in batches)


@torch.no_grad()
def head_removal_losses(model: SentryAttend, batches: Batches, head_means: list[Tensor]) -> list[Tensor]:
    """Per layer (H,): loss increase when each still-active head of `model` (a masked model) is
    replaced by its mean output; heads already removed score 0."""
    baseline = _mean_loss(model, batches)
    scores = []
    for block, means in zip(model.blocks, head_means):
        attn = block.attn
        layer_scores = torch.zeros(attn.n_heads)
        for head in range(attn.n_heads):
            if attn.head_mask[head] == 0:
                continue
            columns = slice(head * attn.head_dim, (head + 1) * attn.head_dim)
            bias = attn.o.bias.clone()
            attn.head_mask[head] = 0.0
            attn.o.bias += attn.o.weight[:, columns] @ means[head]
            layer_scores[head] = _mean_loss(model, batches) - baseline
            attn.o.bias.copy_(bias)
            attn.head_mask[head] = 1.0
        scores.append(layer_scores)
    return scores


HEAD_CRITERIA = ("ablation", "fisher", "taylor")
CHANNEL_CRITERIA = ("fisher", "taylor")


def _zero_removed(scores: list[Tensor], kept: list[tuple[int, ...]]) -> list[Tensor]:
    out = []
    for layer_scores, layer_kept in zip(scores, kept):
        zeroed = torch.zeros_like(layer_scores)
        zeroed[list(layer_kept)] = layer_scores[list(layer_kept)]
        out.append(zeroed)
    return out


def iterative_targets(
    model: SentryAttend,
    batches: Batches,
    budgets: list[float],
    head_means: list[Tensor],
    channel_means: list[Tensor],
    head_criterion: str = "ablation",
    channel_criterion: str = "fisher",
    one_shot: bool = False,
) -> list[SaliencyTarget]:
    """Targets for each budget in ascending `budgets` (the first should be 0): the scores measured
    in the state pruned to that budget, removed structures at zero. Heads are scored by measured
    removal loss ("ablation"), mean squared mask gradient ("fisher") or mean absolute mask
    gradient ("taylor"); channels by one of the last two. Pruned states are bias-compensated with
    the (per-subset) means. one_shot: measure once on the unpruned model and only zero what each
    budget removes (the baselines' way), for comparison."""
    if head_criterion not in HEAD_CRITERIA or channel_criterion not in CHANNEL_CRITERIA:
        raise ValueError(f"criteria must be heads {HEAD_CRITERIA}, channels {CHANNEL_CRITERIA}; "
                         f"got {head_criterion!r}, {channel_criterion!r}")
    targets, current = [], copy.deepcopy(model).eval()  # heads are switched off and on in place
    for index, budget in enumerate(budgets):
        if index == 0 or not one_shot:
            heads, channels = _measure(current, batches, head_means, head_criterion, channel_criterion)
        plan = plan_from_scores(heads, channels, budget)
        targets.append(SaliencyTarget(budget, _zero_removed(heads, [l.kept_heads for l in plan.layers]),
                                      _zero_removed(channels, [l.kept_channels for l in plan.layers])))
        if not one_shot and index + 1 < len(budgets):
            plan = plan_from_scores(heads, channels, budgets[index + 1])
            current = masked_model(model, with_bias_compensation(model, plan, head_means, channel_means))
    return targets


def _measure(model: SentryAttend, batches: Batches, head_means, head_criterion: str, channel_criterion: str):
    """(head scores, channel scores) of `model`; structures its masks removed score 0."""
    gradients = mask_gradients(model, batches)
    fisher, taylor = gradients.fisher(), gradients.taylor()
    by_name = {"fisher": fisher, "taylor": taylor}
    channels = by_name[channel_criterion][1]
    if head_criterion == "ablation":
        # A head whose removal lowers the loss is the first to go: its score is the smallest positive.
        heads = [scores.clamp_min(0) + 1e-6 for scores in head_removal_losses(model, batches, head_means)]
    else:
        heads = by_name[head_criterion][0]
    for layer_heads, layer_channels, block in zip(heads, channels, model.blocks):
        layer_heads[block.attn.head_mask == 0] = 0.0
        layer_channels[block.ffn.ffn_mask == 0] = 0.0
    return heads, channels
