"""Joint training: the backbone learns to be accurate under SentryGate's own plans while the gate
learns, from the backbone as it trains, what matters for each modality subset.

After a warm-up, every training step runs its batch (modality subset S) twice, the "sandwich"
of slimmable networks:

1. at full width, with plain cross-entropy; the per-example gradients of every head's and FFN
   channel's mask in this pass update S's running Fisher importance (the saliency alignment);
2. pruned by the gate's plan for (S, b), with b drawn from [min_budget, the epoch's top budget]
   and the plan made by `plan_from_scores`, exactly as at deployment; its loss mixes
   cross-entropy with distillation from the full-width logits.

The gate is regressed, one AdamW step per training step, onto the log of every subset's
per-layer-normalised running importance, at random budgets. That target does not depend on the
budget, so a subset's plans are nested: a larger budget removes what a smaller one removed and
more. The backbone is therefore trained for every prefix of the gate's order, which is what lets
one set of weights serve every budget zero-shot. Structures the gate removes for S are those
that carry least for S, and the pruned passes teach the rest to do without them.

Pure PyTorch; one process (the gate's running importance would differ between DDP ranks).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate, alive_vector
from sentryfuse_ros.pruning.gate_targets import budget_grid
from sentryfuse_ros.pruning.gate_training import gate_config_for, log_target
from sentryfuse_ros.pruning.plan import plan_from_scores
from sentryfuse_ros.pruning.saliency import MaskGradients
from sentryfuse_ros.pruning.slicing import layer_widths


@dataclass(frozen=True)
class JointConfig:
    min_budget: float = 0.05
    max_budget: float = 0.8
    # Pruned passes start after this many epochs, so the first importance estimates have settled,
    # and their top budget rises linearly to max_budget over ramp_epochs.
    start_epoch: float = 1.0
    ramp_epochs: float = 3.0
    # Weight of distillation from the full-width pass in the pruned pass's loss (the rest is
    # cross-entropy with the labels).
    distill_weight: float = 0.5
    # Running importance: new = decay * old + (1 - decay) * this batch's, per subset.
    importance_decay: float = 0.98
    gate_hidden: int = 128
    gate_learning_rate: float = 3e-3
    # Random budgets per subset in each gate regression step.
    gate_rows_per_subset: int = 4
    log_floor: float = 1e-3
    # Budgets at which the gate's plans are validated each epoch (with the unpruned model), and
    # at which the final gate chooses its refinement on held-out data.
    val_budgets: tuple[float, ...] = (0.4, 0.8)
    refinement_check_budgets: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)

    def __post_init__(self):
        if not 0.0 < self.min_budget <= self.max_budget < 1.0:
            raise ValueError(f"need 0 < min_budget <= max_budget < 1, got {self.min_budget}, {self.max_budget}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if not 0.0 <= self.importance_decay < 1.0:
            raise ValueError(f"importance_decay must be in [0, 1), got {self.importance_decay}")

    def top_budget(self, epoch: float) -> float | None:
        """The largest budget drawn at (fractional) `epoch`; None before the pruned passes start."""
        if epoch < self.start_epoch:
            return None
        ramp = min(1.0, (epoch - self.start_epoch) / self.ramp_epochs) if self.ramp_epochs > 0 else 1.0
        return self.min_budget + ramp * (self.max_budget - self.min_budget)

    def to_dict(self) -> dict:
        return asdict(self)


class JointPruning:
    """The gate being trained, each subset's running importance, and the masks of its plans."""

    def __init__(self, model: SentryAttend, config: JointConfig, seed: int):
        self.config = config
        self.model = model
        tuned = tuple(budget for budget in budget_grid(0.1, config.max_budget) if budget > 0)
        self.gate = SentryGate(gate_config_for(model, config.gate_hidden, tuned))
        self.optimizer = torch.optim.AdamW(self.gate.parameters(), lr=config.gate_learning_rate, weight_decay=1e-4)
        self.heads_per_layer, self.channels_per_layer = layer_widths(model)
        # subset -> (per-layer head importance, per-layer channel importance), running means.
        self.importance: dict[tuple[str, ...], tuple[list[Tensor], list[Tensor]]] = {}
        self.generator = torch.Generator().manual_seed(seed)

    def draw_budget(self, epoch: float) -> float | None:
        top = self.config.top_budget(epoch)
        if top is None:
            return None
        return self.config.min_budget + float(torch.rand((), generator=self.generator)) * (top - self.config.min_budget)

    @torch.no_grad()
    def record(self, subset: tuple[str, ...], gradients: MaskGradients) -> None:
        """Fold one full-width batch's mask gradients into `subset`'s running Fisher importance."""
        heads, channels = gradients.fisher()
        if subset not in self.importance:
            self.importance[subset] = (heads, channels)
            return
        decay = self.config.importance_decay
        old_heads, old_channels = self.importance[subset]
        self.importance[subset] = (
            [decay * old + (1 - decay) * new for old, new in zip(old_heads, heads)],
            [decay * old + (1 - decay) * new for old, new in zip(old_channels, channels)],
        )

    def fit_step(self) -> float | None:
        """One regression step of the gate onto every recorded subset's importance; its loss."""
        if not self.importance:
            return None
        rows = self.config.gate_rows_per_subset
        subsets = list(self.importance)
        alive = torch.stack([alive_vector(subset) for subset in subsets]).repeat_interleave(rows, dim=0)
        budgets = torch.rand(len(subsets) * rows, generator=self.generator) * self.config.max_budget
        wanted = torch.stack(
            [log_target(*self.importance[subset], self.config.log_floor) for subset in subsets]
        ).repeat_interleave(rows, dim=0)
        self.gate.train()
        loss = F.mse_loss(self.gate(alive, budgets), wanted)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.gate.eval()
        return loss.item()

    def masks(self, subset: tuple[str, ...], budget: float) -> tuple[list[Tensor], list[Tensor]]:
        """(head masks, channel masks) of the gate's plan for (subset, budget), deployment's rule."""
        scores = self.gate.scores(subset, budget)
        plan = plan_from_scores(scores.heads, scores.channels, budget)
        return plan.head_masks(self.heads_per_layer), plan.channel_masks(self.channels_per_layer)

    @contextmanager
    def pruned(self, subset: tuple[str, ...], budget: float):
        """The model masked by the gate's plan inside the block, unmasked again after (the masks
        are buffers, saved with the checkpoint)."""
        self.model.set_masks(*self.masks(subset, budget))
        try:
            yield self.model
        finally:
            ones = [torch.ones(n) for n in self.heads_per_layer], [torch.ones(n) for n in self.channels_per_layer]
            self.model.set_masks(*ones)


def pruned_loss(logits: Tensor, labels: Tensor, full_logits: Tensor, config: JointConfig, label_smoothing: float) -> Tensor:
    """Cross-entropy mixed with distillation (KL from the detached full-width prediction)."""
    hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    soft = F.kl_div(logits.log_softmax(dim=1), full_logits.detach().log_softmax(dim=1), log_target=True,
                    reduction="batchmean")
    return (1 - config.distill_weight) * hard + config.distill_weight * soft


def finish_gate(gate: SentryGate, model: SentryAttend, val_inputs: dict, val_labels: Tensor, config: JointConfig,
                seed: int, examples: int | None = None) -> dict:
    """Give the jointly trained gate what deployment refines its plans with, as post-hoc training
    does: per-subset means and mask-tuning scales on one half of the validation split, the
    refinement chosen on the other half, each of post-hoc training's size unless `examples`.
    Returns that choice."""
    from sentryfuse_ros.pruning.gate_training import GateTrainingConfig, refine_gate, store_means
    from sentryfuse_ros.pruning.method import Calibration

    model.eval()
    sizes = GateTrainingConfig()
    calibration, heldout = Calibration(val_inputs, val_labels).halves(seed)
    calibration = calibration.sample(min(examples or sizes.examples_per_subset, len(calibration.labels)), seed=seed)
    heldout = heldout.sample(min(examples or sizes.heldout_examples, len(heldout.labels)), seed=seed)
    store_means(gate, model, calibration)
    return refine_gate(gate, model, calibration, heldout, config.refinement_check_budgets)
