"""First-order Taylor importance (Michel et al. 2019): mean |dL/dmask| on calibration data.

`StaticTaylor` measures with every modality present, as a deployed static plan must (it cannot
know which sensors will fail). `SubsetTaylorOracle` measures on calibration data holding only
the live subset: the best a one-shot Taylor plan can do for that subset, but it needs labelled
data and a backward pass on the robot at the moment a sensor drops out. SentryGate tries to
match it without either.
"""

from __future__ import annotations

from sentryfuse_ros.pruning.method import ScoredMethod, Scores
from sentryfuse_ros.pruning.saliency import mask_gradients


class StaticTaylor(ScoredMethod):
    name = "taylor"

    def scores(self, model, subset, calibration, seed) -> Scores:
        return Scores(*mask_gradients(model, calibration.batches()).taylor())


class SubsetTaylorOracle(ScoredMethod):
    name = "oracle"
    subset_aware = True

    def scores(self, model, subset, calibration, seed) -> Scores:
        return Scores(*mask_gradients(model, calibration.batches(subset)).taylor())
