"""SentryGate: (which modalities are alive, pruning budget) -> importance of every head and channel.

A small MLP reads the alive mask (camera, imu, audio as 0/1) and the budget b in [0, 1] and
predicts, for every encoder layer of one SentryAttend backbone, a log-importance for each
attention head and each FFN hidden channel. K/V groups need no score of their own: a group goes
when every query head reading it goes (pruning/plan.py).

It also stores what deployment may use to correct the structures it keeps, all measured offline
per modality subset so deployment needs no data: the mean activation of every head output and
FFN channel of the unpruned backbone (to compensate the bias of what is removed, as FLAP does),
and, for each trained budget, least-squares output scales of the kept structures for the gate's
own plan (Kwon et al.'s mask tuning, solved ahead of time). Which of these refinements a plan
applies (`refinement`) is decided when the gate is trained, on held-out data.

Training (pruning/gate_training.py) regresses the predicted log-importance onto importance
measured per subset while pruning iteratively; here is only the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS, canonical_subset


REFINEMENTS = ("none", "bias_compensation", "mask_tuning")


@dataclass(frozen=True)
class SentryGateConfig:
    heads_per_layer: tuple[int, ...]
    channels_per_layer: tuple[int, ...]
    head_dim: int
    hidden: int = 128
    refinement: str = "bias_compensation"
    # Budgets with stored mask-tuning scales (the plans of other budgets are not tuned).
    tuned_budgets: tuple[float, ...] = ()

    def __post_init__(self):
        if len(self.heads_per_layer) != len(self.channels_per_layer) or not self.heads_per_layer:
            raise ValueError("need head and channel counts for the same, non-zero number of layers")
        if self.refinement not in REFINEMENTS:
            raise ValueError(f"refinement must be one of {REFINEMENTS}, got {self.refinement!r}")

    @property
    def n_outputs(self) -> int:
        return sum(self.heads_per_layer) + sum(self.channels_per_layer)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SentryGateConfig:
        try:
            return cls(
                heads_per_layer=tuple(values["heads_per_layer"]),
                channels_per_layer=tuple(values["channels_per_layer"]),
                head_dim=int(values["head_dim"]),
                hidden=int(values.get("hidden", 128)),
                refinement=str(values.get("refinement", "bias_compensation")),
                tuned_budgets=tuple(float(b) for b in values.get("tuned_budgets", ())),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed gate config: {error}") from error


@dataclass
class GateScores:
    """Per-layer importance: heads[l] is (H_l,), channels[l] is (F_l,); larger = keep."""

    heads: list[Tensor]
    channels: list[Tensor]


def alive_vector(subset) -> Tensor:
    subset = canonical_subset(subset)
    return torch.tensor([1.0 if name in subset else 0.0 for name in MODALITIES])


class SentryGate(nn.Module):
    def __init__(self, config: SentryGateConfig):
        super().__init__()
        self.config = config
        n_features = 2 * len(MODALITIES) + 2
        self.mlp = nn.Sequential(
            nn.Linear(n_features, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.n_outputs),
        )
        # Mean activation of every head output dimension / FFN channel per modality subset
        # (row i = MODALITY_SUBSETS[i]) of the unpruned backbone, for bias compensation.
        self.register_buffer(
            "head_output_means", torch.zeros(len(MODALITY_SUBSETS), sum(config.heads_per_layer) * config.head_dim)
        )
        self.register_buffer("channel_means", torch.zeros(len(MODALITY_SUBSETS), sum(config.channels_per_layer)))
        # Mask-tuning output scales of every head / channel (1 = untuned) per subset and tuned budget.
        scale_shape = (len(MODALITY_SUBSETS), len(config.tuned_budgets))
        self.register_buffer("head_scales", torch.ones(*scale_shape, sum(config.heads_per_layer)))
        self.register_buffer("channel_scales", torch.ones(*scale_shape, sum(config.channels_per_layer)))

    @staticmethod
    def features(alive: Tensor, budget: Tensor) -> Tensor:
        """(B, 3) alive mask and (B,) budget -> (B, 8): the budget enters alone and per modality."""
        budget = budget.reshape(-1, 1)
        return torch.cat([alive, budget, budget.square(), alive * budget], dim=1)

    def forward(self, alive: Tensor, budget: Tensor) -> Tensor:
        """(B, n_outputs) log-importance for a batch of (alive mask, budget) situations."""
        return self.mlp(self.features(alive, budget))

    def split(self, flat: Tensor) -> GateScores:
        """Cut one (n_outputs,) vector into per-layer head and channel scores."""
        sizes = [*self.config.heads_per_layer, *self.config.channels_per_layer]
        parts = list(torch.split(flat, sizes))
        n_layers = len(self.config.heads_per_layer)
        return GateScores(parts[:n_layers], parts[n_layers:])

    @torch.no_grad()
    def scores(self, subset, budget: float) -> GateScores:
        """Importance of every head and channel (positive; larger = keep) for one situation."""
        if not 0.0 <= budget <= 1.0:
            raise ValueError(f"budget must be in [0, 1], got {budget}")
        log_importance = self(alive_vector(subset)[None], torch.tensor([float(budget)]))[0]
        return self.split(log_importance.exp())

    def means_for(self, subset) -> tuple[list[Tensor], list[Tensor]]:
        """(per-layer head output means (H_l, head_dim), per-layer channel means (F_l,)) for a subset."""
        row = MODALITY_SUBSETS.index(canonical_subset(subset))
        head_sizes = [h * self.config.head_dim for h in self.config.heads_per_layer]
        head_means = [
            part.view(-1, self.config.head_dim) for part in torch.split(self.head_output_means[row], head_sizes)
        ]
        return head_means, list(torch.split(self.channel_means[row], list(self.config.channels_per_layer)))

    def _budget_column(self, budget: float) -> int | None:
        for column, tuned in enumerate(self.config.tuned_budgets):
            if abs(tuned - budget) < 1e-6:
                return column
        return None

    def scales_for(self, subset, budget: float) -> tuple[list[Tensor], list[Tensor]] | None:
        """(per-layer head scales, per-layer channel scales) stored for this situation, or None if
        `budget` is not a tuned budget."""
        column = self._budget_column(budget)
        if column is None:
            return None
        row = MODALITY_SUBSETS.index(canonical_subset(subset))
        return (list(torch.split(self.head_scales[row, column], list(self.config.heads_per_layer))),
                list(torch.split(self.channel_scales[row, column], list(self.config.channels_per_layer))))

    @torch.no_grad()
    def store_scales(self, subset, budget: float, head_scales: list[Tensor], channel_scales: list[Tensor]) -> None:
        column = self._budget_column(budget)
        if column is None:
            raise ValueError(f"budget {budget} is not one of the tuned budgets {self.config.tuned_budgets}")
        row = MODALITY_SUBSETS.index(canonical_subset(subset))
        self.head_scales[row, column] = torch.cat(head_scales)
        self.channel_scales[row, column] = torch.cat(channel_scales)
