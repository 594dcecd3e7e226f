"""Train SentryGate offline: collect per-subset iterative-Taylor targets, then fit the MLP.

This is a second stage after the backbone is trained and frozen: the backbone weights every
baseline prunes are exactly the ones SentryGate prunes, and the gate can be retrained for a
new backbone in minutes without touching it.

The fit regresses the gate's log-importance onto log(per-layer-normalised saliency). A listwise
KL loss would weigh the most important structures most, but pruning decisions happen at the
low end of the ranking, which a log-space regression weighs as much as the top.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from scipy.stats import spearmanr
from torch import Tensor
from tqdm import tqdm

from sentryfuse_ros.modalities import MODALITY_SUBSETS, subset_name
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate, SentryGateConfig, alive_vector
from sentryfuse_ros.pruning.baselines.activation_stats import activation_stats
from sentryfuse_ros.pruning.gate_targets import SaliencyTarget, budget_grid, iterative_taylor_targets
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import normalize_per_layer, plan_from_scores
from sentryfuse_ros.pruning.saliency import mask_gradients
from sentryfuse_ros.pruning.slicing import layer_widths


@dataclass(frozen=True)
class GateTrainingConfig:
    examples_per_subset: int = 512  # calibration examples (train split) the targets are measured on
    heldout_examples: int = 512  # examples (val split) for the rank-correlation report
    # Iterative pruning steps: 0.1 matches the evaluation grid's ratios; budgets in between are
    # interpolated by the gate.
    budget_step: float = 0.1
    max_budget: float = 0.7
    fit_steps: int = 4000
    learning_rate: float = 3e-3
    hidden: int = 128
    log_floor: float = 1e-3  # normalised saliency below this counts as "removed" in log space
    seed: int = 0


def gate_config_for(model: SentryAttend, hidden: int) -> SentryGateConfig:
    heads, channels = layer_widths(model)
    return SentryGateConfig(tuple(heads), tuple(channels), model.config.head_dim, hidden)


def log_target(heads: list[Tensor], channels: list[Tensor], floor: float) -> Tensor:
    """Flat (n_outputs,) regression target in the gate's output order: heads of every layer, then channels."""
    normalized = normalize_per_layer(heads) + normalize_per_layer(channels)
    return torch.cat(normalized).clamp_min(floor).log().float()


def collect_targets(
    model: SentryAttend, calibration: Calibration, budgets: list[float]
) -> dict[tuple[str, ...], list[SaliencyTarget]]:
    targets = {}
    for subset in tqdm(MODALITY_SUBSETS, desc="saliency targets", unit="subset"):
        batches = list(calibration.batches(subset))
        targets[subset] = iterative_taylor_targets(model, batches, budgets)
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
    gate: SentryGate, model: SentryAttend, heldout: Calibration, train_targets: dict
) -> dict[str, dict[str, float]]:
    """Per subset: Spearman of the gate and of static all-modality Taylor against Taylor measured on
    held-out data under that subset (budget 0), and how much of the iterative plans the gate reproduces."""
    static_heads, static_channels = _flat_normalized(*mask_gradients(model, heldout.batches()).taylor())
    report = {}
    for subset in MODALITY_SUBSETS:
        oracle_heads, oracle_channels = _flat_normalized(*mask_gradients(model, heldout.batches(subset)).taylor())
        gate_heads, gate_channels = _flat_normalized(*vars(gate.scores(subset, 0.0)).values())
        report[subset_name(subset)] = {
            "gate_spearman_heads": _spearman(gate_heads, oracle_heads),
            "gate_spearman_channels": _spearman(gate_channels, oracle_channels),
            "static_taylor_spearman_heads": _spearman(static_heads, oracle_heads),
            "static_taylor_spearman_channels": _spearman(static_channels, oracle_channels),
            "train_plan_agreement": sum(plan_agreement(gate, subset, t) for t in train_targets[subset])
            / len(train_targets[subset]),
        }
    return report


def train_gate(
    model: SentryAttend, train: Calibration, heldout: Calibration, config: GateTrainingConfig
) -> tuple[SentryGate, dict]:
    """The trained gate and a report (fit loss, rank correlations, plan agreement)."""
    torch.manual_seed(config.seed)
    model.eval()
    calibration = train.sample(min(config.examples_per_subset, len(train.labels)), seed=config.seed)
    heldout = heldout.sample(min(config.heldout_examples, len(heldout.labels)), seed=config.seed)
    budgets = budget_grid(config.budget_step, config.max_budget)
    targets = collect_targets(model, calibration, budgets)
    gate = SentryGate(gate_config_for(model, config.hidden))
    with torch.no_grad():
        for row, subset in enumerate(MODALITY_SUBSETS):
            stats = activation_stats(model, calibration.batches(subset))
            gate.head_output_means[row] = torch.cat([m.reshape(-1) for m in stats.head_mean])
            gate.channel_means[row] = torch.cat(stats.channel_mean)
    history = fit_gate(gate, targets, config)
    report = {
        "config": asdict(config),
        "fit_loss_first_last": [history[0], history[-1]],
        "subsets": rank_report(gate, model, heldout, targets),
    }
    return gate, report
