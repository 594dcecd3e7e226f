"""The evaluation grid, and its results file: one CSV row per (method, subset, ratio, seed).

Rows carry the backbone's weight digest, a digest of the evaluation settings that change
results (test subsample, calibration size, splits) and a fingerprint of the method (its flags and
any learned weights, e.g. SentryGate's gate), so a resumed run skips exactly the rows that
would come out the same and recomputes the rest.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from sentryfuse_ros.modalities import MODALITY_SUBSETS
from sentryfuse_ros.pruning.registry import DEFAULT_METHODS

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# The unpruned backbone, evaluated once per subset as the reference row.
UNPRUNED = "unpruned"


@dataclass(frozen=True)
class GridSpec:
    methods: tuple[str, ...] = DEFAULT_METHODS
    subsets: tuple[tuple[str, ...], ...] = MODALITY_SUBSETS
    ratios: tuple[float, ...] = RATIOS
    seeds: tuple[int, ...] = (0, 1, 2)
    # None: the whole test split; else a fixed random subsample of that size (same for every seed).
    test_examples: int | None = None
    calibration_examples: int = 256
    test_split: str = "test"
    calibration_split: str = "val"

    def settings_digest(self) -> str:
        """Digest of the settings that change a row's accuracy (not which rows are in the grid)."""
        settings = {
            "test_examples": self.test_examples,
            "calibration_examples": self.calibration_examples,
            "test_split": self.test_split,
            "calibration_split": self.calibration_split,
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


FULL_GRID = GridSpec()
# <= 3 minutes on 2 cores: one seed, four ratios, 512 test examples, 64 calibration examples.
QUICK_GRID = GridSpec(seeds=(0,), ratios=(0.2, 0.4, 0.6, 0.8), test_examples=512, calibration_examples=64)


def model_digest(model: nn.Module) -> str:
    """SHA-256 over the model's state (names, shapes and bytes), for injected and loaded models alike."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def method_fingerprint(method) -> str:
    """Digest of a method's settings and learned weights: its plain attributes and module states."""
    digest = hashlib.sha256(type(method).__qualname__.encode())
    for key, value in sorted(vars(method).items()):
        if isinstance(value, nn.Module):
            digest.update(model_digest(value).encode())
        elif isinstance(value, (bool, int, float, str, type(None))):
            digest.update(f"{key}={value!r}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RowKey:
    model: str
    settings: str
    method: str
    fingerprint: str
    subset: str
    ratio: float
    seed: int


COLUMNS = ("model", "settings", "method", "fingerprint", "subset", "ratio", "seed", "accuracy", "n_test", "parameters")


@dataclass(frozen=True)
class Row:
    key: RowKey
    accuracy: float
    n_test: int
    parameters: int

    def to_csv(self) -> dict:
        return {
            **asdict(self.key),
            "accuracy": f"{self.accuracy:.6f}",
            "n_test": self.n_test,
            "parameters": self.parameters,
        }

    @classmethod
    def from_csv(cls, record: dict) -> Row:
        key = RowKey(
            record["model"],
            record["settings"],
            record["method"],
            record["fingerprint"],
            record["subset"],
            round(float(record["ratio"]), 6),
            int(record["seed"]),
        )
        return cls(key, float(record["accuracy"]), int(record["n_test"]), int(record["parameters"]))


class ResultsFile:
    """Append-only CSV of rows; every row is flushed at once so an interrupted run loses nothing."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict[RowKey, Row]:
        if not self.path.is_file():
            return {}
        with open(self.path, newline="") as stream:
            rows = [Row.from_csv(record) for record in csv.DictReader(stream)]
        return {row.key: row for row in rows}

    def append(self, row: Row) -> None:
        new_file = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            if new_file:
                writer.writeheader()
            writer.writerow(row.to_csv())


def test_subsample(n_total: int, n: int | None) -> torch.Tensor | None:
    """Indices of the fixed test subsample (seed 0, independent of the grid seeds); None = all."""
    if n is None or n >= n_total:
        return None
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(0))[:n].sort().values
