"""First-order Taylor importance (Michel et al. 2019): mean |dL/dmask| on calibration data.

`StaticTaylor` measures with every modality present, as a deployed static plan must (it cannot
know which sensors will fail). `SubsetTaylorOracle` measures on calibration data holding only
the live subset: the best a one-shot Taylor plan can do for that subset, but it needs labelled
data and a backward pass on the robot at the moment a sensor drops out. SentryGate tries to
match it without either.
"""

from __future__ import annotations

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import PrunePlan, plan_from_scores
from sentryfuse_ros.pruning.saliency import mask_gradients


class StaticTaylor:
    name = "taylor"
    subset_aware = False

    def plan(
        self, model: SentryAttend, subset: tuple[str, ...], ratio: float, calibration: Calibration, seed: int
    ) -> PrunePlan:
        return plan_from_scores(*mask_gradients(model, calibration.batches()).taylor(), ratio)


class SubsetTaylorOracle:
    name = "oracle"
    subset_aware = True

    def plan(
        self, model: SentryAttend, subset: tuple[str, ...], ratio: float, calibration: Calibration, seed: int
    ) -> PrunePlan:
        return plan_from_scores(*mask_gradients(model, calibration.batches(subset)).taylor(), ratio)
