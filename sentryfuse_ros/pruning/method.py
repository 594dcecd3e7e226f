"""The interface every pruning method implements, SentryGate and the baselines alike.

A method turns (trained model, live modality subset, prune ratio) into a PrunePlan. Methods
that need data get a small calibration set; static methods calibrate with every modality
present (they do not know which sensors will be alive), the per-subset oracle and SentryGate's
offline training see the subset. SentryGate's plan() uses neither data nor gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.plan import PrunePlan, plan_from_scores


@dataclass
class Calibration:
    """Calibration examples with every modality: inputs[name] is (N, ...), labels (N,)."""

    inputs: dict[str, Tensor]
    labels: Tensor
    batch_size: int = 64

    def batches(self, subset: tuple[str, ...] | None = None):
        """(inputs, labels) batches restricted to `subset` (None: every modality)."""
        names = subset if subset is not None else tuple(self.inputs)
        for start in range(0, len(self.labels), self.batch_size):
            stop = start + self.batch_size
            yield {name: self.inputs[name][start:stop] for name in names}, self.labels[start:stop]

    def sample(self, n: int, seed: int) -> "Calibration":
        """n examples drawn without replacement (a seed picks a different calibration set)."""
        return self.split(n, seed)[0]

    def split(self, n: int, seed: int) -> tuple["Calibration", "Calibration"]:
        """(n examples drawn without replacement, all the others): two disjoint sets."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.labels), generator=generator)
        return self._rows(order[:n]), self._rows(order[n:])

    def halves(self, seed: int) -> tuple["Calibration", "Calibration"]:
        """Two disjoint random halves: a gate's calibration set and its held-out set, both drawn
        from the validation split (post-hoc and joint gate training alike)."""
        return self.split(len(self.labels) // 2, seed)

    def _rows(self, index: Tensor) -> "Calibration":
        return Calibration({k: v[index] for k, v in self.inputs.items()}, self.labels[index], self.batch_size)


class PruningMethod(Protocol):
    name: str
    # False: the plan ignores `subset` (a static plan), so an evaluation builds it once per
    # (ratio, seed) and reuses it for every modality subset.
    subset_aware: bool

    def plan(
        self, model: SentryAttend, subset: tuple[str, ...], ratio: float, calibration: Calibration, seed: int
    ) -> PrunePlan: ...


class Scores(NamedTuple):
    """Per-layer head and FFN-channel scores, and what was measured to get them (for `refine`)."""

    heads: Sequence[Tensor]
    channels: Sequence[Tensor]
    measured: Any = None


class ScoredMethod:
    """A method whose plan is plan_from_scores of its own scores, like every baseline: a subclass
    sets `name` (and `subset_aware`) and writes `scores`; one that adjusts the plan afterwards
    (output scales, bias corrections) also writes `refine`."""

    name: str
    subset_aware = False

    def scores(self, model: SentryAttend, subset: tuple[str, ...], calibration: Calibration, seed: int) -> Scores:
        raise NotImplementedError

    def refine(self, model: SentryAttend, plan: PrunePlan, scores: Scores, calibration: Calibration) -> PrunePlan:
        return plan

    def plan(
        self, model: SentryAttend, subset: tuple[str, ...], ratio: float, calibration: Calibration, seed: int
    ) -> PrunePlan:
        scores = self.scores(model, subset, calibration, seed)
        return self.refine(model, plan_from_scores(scores.heads, scores.channels, ratio), scores, calibration)
