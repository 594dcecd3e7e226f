"""Where sensor_sim's samples come from: the benchmark's test split, or a synthetic stand-in.

A source is anything with `len()` and `sample(i)` returning an object with `.image` (uint8 HxW),
`.imu` (float32 (T, 6)), `.audio` (float32 mono at `.audio_rate_hz`) and `.label` (int), which
is what data.dataset's RawSample provides. The synthetic source lets the whole system (and its
tests and benchmark) run on a machine where `sentryfuse data prepare` has not been run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.modalities import CLASS_NAMES

SOURCES = ("dataset", "synthetic")


@dataclass(frozen=True)
class SyntheticSample:
    image: np.ndarray
    imu: np.ndarray
    audio: np.ndarray
    label: int
    imu_rate_hz: float = INPUT_SPEC.imu_rate_hz
    audio_rate_hz: int = INPUT_SPEC.audio_rate_hz


class SyntheticSource:
    """Deterministic samples whose content depends on the label; not meant to be classified."""

    def __init__(self, size: int = 20):
        if size < 1:
            raise ValueError(f"synthetic source needs at least one sample, got {size}")
        self.size = size

    def __len__(self) -> int:
        return self.size

    def sample(self, index: int) -> SyntheticSample:
        label = index % len(CLASS_NAMES)
        rng = np.random.default_rng(index)
        side = INPUT_SPEC.image_size
        image = rng.integers(0, 40, size=(side, side), dtype=np.uint8)
        image[:, 2 + 2 * label: 4 + 2 * label] = 255  # a bright column whose position is the label
        t = np.arange(INPUT_SPEC.imu_window_samples) / INPUT_SPEC.imu_rate_hz
        wave = np.sin(2 * np.pi * (1 + label) * t)
        imu = np.stack([0.5 * wave, 0.2 * wave, 9.81 + 0.1 * wave, 0.3 * wave, -0.3 * wave, 0.1 * wave], axis=1)
        ts = np.arange(INPUT_SPEC.audio_window_samples) / INPUT_SPEC.audio_rate_hz
        audio = 0.3 * np.sin(2 * np.pi * (300 + 60 * label) * ts) + 0.01 * rng.standard_normal(ts.size)
        return SyntheticSample(image, imu.astype(np.float32), audio.astype(np.float32), label)


class DatasetSource:
    """A split of the benchmark's prepared cache (data.dataset.load_split)."""

    def __init__(self, split: str):
        from sentryfuse_ros.data.dataset import load_split  # only dataset users need the cache

        self._split = load_split(split)
        if len(self._split) == 0:
            raise ValueError(f"split {split!r} is empty")

    def __len__(self) -> int:
        return len(self._split)

    def sample(self, index: int):
        return self._split.raw(index)


def make_source(name: str, split: str, synthetic_size: int):
    if name == "dataset":
        return DatasetSource(split)
    if name == "synthetic":
        return SyntheticSource(synthetic_size)
    raise ValueError(f"source must be one of {SOURCES}, got {name!r}")
