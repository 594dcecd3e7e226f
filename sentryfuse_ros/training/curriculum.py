"""Modality-dropout curriculum: which modalities each training batch keeps.

All modalities during a warm-up, then the probability of dropping some rises linearly to its
maximum. A dropped batch keeps one of the proper non-empty subsets of the task's modalities,
chosen uniformly, so every subset (all 7 of {camera, imu, audio} for the digits) is trained. The whole batch shares a subset because
missing modalities are removed from the sequence, not zero-filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sentryfuse_ros.modalities import MODALITIES, subsets_of


@dataclass(frozen=True)
class ModalityDropoutCurriculum:
    warmup_epochs: float = 1.0
    ramp_epochs: float = 3.0
    max_drop_probability: float = 0.75

    def drop_probability(self, epoch: float) -> float:
        """Probability that a batch at (fractional) `epoch` loses at least one modality."""
        if epoch < self.warmup_epochs:
            return 0.0
        ramp = min(1.0, (epoch - self.warmup_epochs) / self.ramp_epochs) if self.ramp_epochs > 0 else 1.0
        return self.max_drop_probability * ramp

    def sample_subset(self, epoch: float, generator: torch.Generator, modalities=MODALITIES) -> tuple[str, ...]:
        """The subset of the task's `modalities` one batch keeps."""
        reduced = subsets_of(modalities)[:-1]  # every proper non-empty subset (the last is all of them)
        if torch.rand((), generator=generator).item() >= self.drop_probability(epoch) or not reduced:
            return tuple(modalities)
        return reduced[int(torch.randint(len(reduced), (), generator=generator))]


NO_DROPOUT = ModalityDropoutCurriculum(warmup_epochs=0.0, ramp_epochs=0.0, max_drop_probability=0.0)
