"""What SentryGate learns from: per-subset saliency under iterative pruning, and activation means.

For one modality subset S, prune the backbone step by step (budget 0, 0.05, 0.10, ...): at each
step measure Taylor saliency |a x dL/da| of every head and channel on calibration data holding
only S's modalities, and remove the lowest structures (through the same plan_from_scores every
method uses) to reach the next budget. The target for budget b is the saliency measured in the
state pruned to b: structures removed on the way read zero, so a plan built from it at b is the
iterative plan, and the remaining structures' order says what to remove next. Iterating
re-measures importance after each removal, which one-shot Taylor (the static baseline, and
the per-subset oracle) cannot do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
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


def iterative_taylor_targets(
    model: SentryAttend, batches: list[tuple[Mapping[str, Tensor], Tensor]], budgets: list[float]
) -> list[SaliencyTarget]:
    """Saliency targets for each budget in ascending `budgets` (the first should be 0)."""
    targets, current = [], model
    for index, budget in enumerate(budgets):
        heads, channels = mask_gradients(current, batches).taylor()
        targets.append(SaliencyTarget(budget, heads, channels))
        if index + 1 < len(budgets):
            # The next target is measured in the state this saliency prunes to.
            current = masked_model(model, plan_from_scores(heads, channels, budgets[index + 1]))
    return targets
