"""Train SentryGate offline: collect per-subset iterative importance targets, then fit the MLP.

This is a second stage after the backbone is trained and frozen: the backbone weights every
baseline prunes are exactly the ones SentryGate prunes, and the gate can be retrained for a
new backbone in minutes without touching it.

The fit regresses the gate's log-importance onto log(per-layer-normalised saliency). A listwise
KL loss would weigh the most important structures most, but pruning decisions happen at the
low end of the ranking, which a log-space regression weighs as much as the top.

After the fit the gate also gets what its plans may be refined with, all measured on the
calibration data now so that deployment needs none: per-subset mean activations (bias
compensation) and, for every subset and trained budget, least-squares mask-tuning scales of its
own plan. Which refinement deployment applies is chosen by the gate plans' accuracy on held-out
(validation) data, never on the test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from scipy.stats import spearmanr
from torch import Tensor
from tqdm import tqdm

from sentryfuse_ros.modalities import MODALITY_SUBSETS, subset_name, subsets_of
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import REFINEMENTS, SentryGate, SentryGateConfig, alive_vector
from sentryfuse_ros.pruning.activation_stats import activation_stats
from sentryfuse_ros.pruning.mask_tuning import tune_masks
from sentryfuse_ros.pruning.gate_targets import CHANNEL_CRITERIA, HEAD_CRITERIA, SaliencyTarget, budget_grid, iterative_targets
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import normalize_per_layer, plan_from_scores
from sentryfuse_ros.pruning.sentry_gate_method import gate_plan
from sentryfuse_ros.pruning.slicing import layer_widths, masked_model


@dataclass(frozen=True)
class GateTrainingConfig:
    examples_per_subset: int = 512  # calibration examples the targets are measured on
    heldout_examples: int = 512  # other examples, for the refinement choice and the rank-correlation report
    # Iterative pruning steps: 0.1 matches the evaluation grid's ratios; budgets in between are
    # interpolated by the gate.
    budget_step: float = 0.1
    max_budget: float = 0.8
    fit_steps: int = 4000
    learning_rate: float = 3e-3
    hidden: int = 128
    log_floor: float = 1e-3  # normalised saliency below this counts as "removed" in log space
    # How heads are scored: "ablation" (measured loss of removing each), "fisher" or "taylor";
    # channels: "fisher" (mean squared mask gradient) or "taylor" (mean absolute). See gate_targets.
    head_target: str = "ablation"
    channel_target: str = "fisher"
    one_shot: bool = False  # measure once instead of re-measuring after each pruning step
    # Budgets at which the plan refinements are compared on held-out data.
    refinement_check_budgets: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    seed: int = 0

    def __post_init__(self):
        if self.head_target not in HEAD_CRITERIA:
            raise ValueError(f"head_target must be one of {HEAD_CRITERIA}, got {self.head_target!r}")
        if self.channel_target not in CHANNEL_CRITERIA:
            raise ValueError(f"channel_target must be one of {CHANNEL_CRITERIA}, got {self.channel_target!r}")


def gate_config_for(model: SentryAttend, hidden: int, tuned_budgets: tuple[float, ...] = ()) -> SentryGateConfig:
    heads, channels = layer_widths(model)
    return SentryGateConfig(tuple(heads), tuple(channels), model.config.head_dim, hidden, tuned_budgets=tuned_budgets)


def log_target(heads: list[Tensor], channels: list[Tensor], floor: float) -> Tensor:
    """Flat (n_outputs,) regression target in the gate's output order: heads of every layer, then channels."""
    normalized = normalize_per_layer(heads) + normalize_per_layer(channels)
    return torch.cat(normalized).clamp_min(floor).log().float()


def collect_targets(
    model: SentryAttend, calibration: Calibration, budgets: list[float], gate: SentryGate, config: GateTrainingConfig
) -> dict[tuple[str, ...], list[SaliencyTarget]]:
    """Per subset, the targets at every budget; pruned states use the subset's means stored in `gate`."""
    targets = {}
    for subset in tqdm(subsets_of(model.config.modalities), desc=f"{config.head_target}/{config.channel_target} targets", unit="subset"):
        targets[subset] = iterative_targets(
            model, list(calibration.batches(subset)), budgets, *gate.means_for(subset),
            head_criterion=config.head_target, channel_criterion=config.channel_target, one_shot=config.one_shot,
        )
    return targets


def fit_gate(
    gate: SentryGate, targets: dict[tuple[str, ...], list[SaliencyTarget]], config: GateTrainingConfig
) -> list[float]:
    """Full-batch AdamW on every (subset, budget) target; returns the loss every 100 steps."""
    rows = [(subset, target) for subset, per_budget in targets.items() for target in per_budget]
    alive = torch.stack([alive_vector(subset) for subset, _ in rows])
    budgets = torch.tensor([target.budget for _, target in rows])
    wanted = torch.stack([log_target(t.heads, t.channels, config.log_floor) for _, t in rows])
    optimizer = torch.optim.AdamW(gate.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.fit_steps)
    history = []
    gate.train()
    for step in range(config.fit_steps):
        loss = torch.nn.functional.mse_loss(gate(alive, budgets), wanted)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == config.fit_steps - 1:
            history.append(loss.item())
    gate.eval()
    return history


def _flat_normalized(heads: list[Tensor], channels: list[Tensor]) -> tuple[Tensor, Tensor]:
    return torch.cat(normalize_per_layer(heads)), torch.cat(normalize_per_layer(channels))


def _spearman(a: Tensor, b: Tensor) -> float:
    return float(spearmanr(a.numpy(), b.numpy()).statistic)


def plan_agreement(gate: SentryGate, subset, target: SaliencyTarget) -> float:
    """Fraction of the target plan's kept heads and channels that the gate's plan keeps too."""
    if target.budget == 0:
        return 1.0
    scores = gate.scores(subset, target.budget)
    mine = plan_from_scores(scores.heads, scores.channels, target.budget)
    wanted = plan_from_scores(target.heads, target.channels, target.budget)
    kept = sum(len(w.kept_heads) + len(w.kept_channels) for w in wanted.layers)
    shared = sum(
        len(set(m.kept_heads) & set(w.kept_heads)) + len(set(m.kept_channels) & set(w.kept_channels))
        for m, w in zip(mine.layers, wanted.layers)
    )
    return shared / kept


def rank_report(
    gate: SentryGate, model: SentryAttend, heldout: Calibration, train_targets: dict, config: GateTrainingConfig
) -> dict[str, dict[str, float]]:
    """Per subset: Spearman correlation with the same importance measured on held-out data under
    that subset (budget 0), of the gate's scores and of that importance measured once with every
    modality (what a static method sees); and how much of the iterative training plans the gate
    reproduces."""

    def measured(subset, batches_subset):
        target = iterative_targets(
            model, list(heldout.batches(batches_subset)), [0.0], *gate.means_for(subset),
            head_criterion=config.head_target, channel_criterion=config.channel_target,
        )[0]
        return _flat_normalized(target.heads, target.channels)

    static_heads, static_channels = measured(model.config.modalities, None)
    report = {}
    for subset in subsets_of(model.config.modalities):
        heldout_heads, heldout_channels = measured(subset, subset)
        gate_heads, gate_channels = _flat_normalized(*vars(gate.scores(subset, 0.0)).values())
        report[subset_name(subset)] = {
            "gate_spearman_heads": _spearman(gate_heads, heldout_heads),
            "gate_spearman_channels": _spearman(gate_channels, heldout_channels),
            "static_spearman_heads": _spearman(static_heads, heldout_heads),
            "static_spearman_channels": _spearman(static_channels, heldout_channels),
            "train_plan_agreement": sum(plan_agreement(gate, subset, t) for t in train_targets[subset])
            / len(train_targets[subset]),
        }
    return report


@torch.no_grad()
def store_mask_tuning(gate: SentryGate, model: SentryAttend, calibration: Calibration) -> None:
    """Solve Kwon et al.'s least-squares mask tuning for the gate's own plan at every tuned budget
    and subset, on that subset's calibration data, and store the scales in the gate."""
    for subset in tqdm(subsets_of(model.config.modalities), desc="mask tuning", unit="subset"):
        batches = list(calibration.batches(subset))
        for budget in gate.config.tuned_budgets:
            scores = gate.scores(subset, budget)
            tuned = tune_masks(model, plan_from_scores(scores.heads, scores.channels, budget), batches)
            head_scales, channel_scales = [], []
            for layer, n_heads, n_channels in zip(tuned.layers, gate.config.heads_per_layer, gate.config.channels_per_layer):
                heads, channels = torch.ones(n_heads), torch.ones(n_channels)
                if layer.head_scales is not None:
                    heads[list(layer.kept_heads)] = torch.tensor(layer.head_scales)
                if layer.channel_scales is not None:
                    channels[list(layer.kept_channels)] = torch.tensor(layer.channel_scales)
                head_scales.append(heads)
                channel_scales.append(channels)
            gate.store_scales(subset, budget, head_scales, channel_scales)


@torch.no_grad()
def _heldout_accuracy(gate: SentryGate, model: SentryAttend, heldout: Calibration, budgets, refinement: str) -> float:
    correct = total = 0
    for subset in subsets_of(model.config.modalities):
        for budget in budgets:
            pruned = masked_model(model, gate_plan(gate, model, subset, budget, refinement))
            for inputs, labels in heldout.batches(subset):
                correct += int((pruned(inputs).argmax(dim=-1) == labels).sum())
                total += len(labels)
    return correct / total


@torch.no_grad()
def store_means(gate: SentryGate, model: SentryAttend, calibration: Calibration) -> None:
    """Store the backbone's per-subset mean head outputs and FFN channels in `gate` (bias compensation)."""
    for row, subset in enumerate(MODALITY_SUBSETS):  # the gate's tables have a row per subset of all three
        if not set(subset) <= set(model.config.modalities):
            continue  # the task has no such inputs: the row stays zero and is never read
        stats = activation_stats(model, calibration.batches(subset))
        gate.head_output_means[row] = torch.cat([m.reshape(-1) for m in stats.head_mean])
        gate.channel_means[row] = torch.cat(stats.channel_mean)


def refine_gate(gate: SentryGate, model: SentryAttend, calibration: Calibration, heldout: Calibration, budgets) -> dict:
    """What a fitted gate (its means stored) keeps besides its MLP, measured offline: the
    mask-tuning scales of its own plans and the refinement its plans deploy with, chosen on
    `heldout` at `budgets`. Post-hoc and joint training both end here."""
    store_mask_tuning(gate, model, calibration)
    return choose_refinement(gate, model, heldout, budgets)


def choose_refinement(gate: SentryGate, model: SentryAttend, heldout: Calibration, budgets) -> dict:
    """Held-out accuracy of the gate's plans under each refinement; the gate keeps the best
    (the simpler one, in REFINEMENTS order, on a tie)."""
    accuracy = {name: _heldout_accuracy(gate, model, heldout, budgets, name) for name in REFINEMENTS}
    chosen = max(REFINEMENTS, key=lambda name: (accuracy[name], -REFINEMENTS.index(name)))
    gate.config = replace(gate.config, refinement=chosen)
    return {"heldout_accuracy": accuracy, "budgets": list(budgets), "chosen": chosen}


def train_gate(
    model: SentryAttend, calibration: Calibration, heldout: Calibration, config: GateTrainingConfig
) -> tuple[SentryGate, dict]:
    """The trained gate and a report (fit loss, rank correlations, plan agreement)."""
    torch.manual_seed(config.seed)
    model.eval()
    calibration = calibration.sample(min(config.examples_per_subset, len(calibration.labels)), seed=config.seed)
    heldout = heldout.sample(min(config.heldout_examples, len(heldout.labels)), seed=config.seed)
    budgets = budget_grid(config.budget_step, config.max_budget)
    gate = SentryGate(gate_config_for(model, config.hidden, tuple(b for b in budgets if b > 0)))
    store_means(gate, model, calibration)
    targets = collect_targets(model, calibration, budgets, gate, config)
    history = fit_gate(gate, targets, config)
    refinement = refine_gate(gate, model, calibration, heldout, config.refinement_check_budgets)
    report = {
        "config": asdict(config),
        "fit_loss_first_last": [history[0], history[-1]],
        "refinement": refinement,
        "subsets": rank_report(gate, model, heldout, targets, config),
    }
    return gate, report
