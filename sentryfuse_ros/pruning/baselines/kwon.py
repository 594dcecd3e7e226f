"""Kwon et al. 2022, "A Fast Post-Training Pruning Framework for Transformers" (retraining-free).

Importance of a head or FFN channel is the diagonal Fisher information of its mask,
mean over calibration examples of (dL/dmask)^2, measured with every modality present (a static
plan). The plan comes from plan_from_scores like every method's; then, where enabled, Kwon et
al.'s two refinements: mask rearrangement inside each layer (block-diagonal Fisher) and
least-squares mask tuning (layer-wise reconstruction of the unpruned outputs).
"""

from __future__ import annotations

from sentryfuse_ros.pruning.baselines.mask_rearrangement import rearrange
from sentryfuse_ros.pruning.mask_tuning import tune_masks
from sentryfuse_ros.pruning.method import ScoredMethod, Scores
from sentryfuse_ros.pruning.plan import PrunePlan
from sentryfuse_ros.pruning.saliency import mask_gradients


class KwonFisher(ScoredMethod):
    def __init__(self, name: str = "kwon", rearrange_masks: bool = False, tune: bool = True):
        self.name = name
        self.rearrange_masks = rearrange_masks
        self.tune = tune

    def scores(self, model, subset, calibration, seed) -> Scores:
        gradients = mask_gradients(model, calibration.batches())
        return Scores(*gradients.fisher(), measured=gradients)

    def refine(self, model, plan, scores, calibration) -> PrunePlan:
        if self.rearrange_masks:
            plan = rearrange(plan, scores.measured)
        if self.tune:
            plan = tune_masks(model, plan, list(calibration.batches()))
        return plan
