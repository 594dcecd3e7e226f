"""Real wrist-worn IMU recordings for a second task: BasicMotions, as the aeon package ships it.

Why BasicMotions: it is the one dataset inside the aeon wheel (aeon/datasets/data, no download)
with 3-axis accelerometer channels and motion classes. The Wiimote gesture sets aeon ships
(PickupGestureWiimoteZ) have the z axis only, and their classes are the subjects; the other
gesture sets (UWaveGestureLibrary, AllGestureWiimoteX, GesturePebbleZ1, ...) are downloads.

What the files' header says: four students wore a smart watch and each recorded four
activities ("walking, resting, running and badminton"; labelled Standing, Running, Walking,
Badminton) five times; "3D accelerometer and a 3D gyroscope"; "sampled once every tenth of a
second, for a ten second period" (RATE_HZ = 10, 100 samples). Train and test: 40 recordings
each, 10 per class.

Units, not documented, assumed from the values: channels 0-2 are the accelerometer in m/s^2
with gravity removed (the watch OS's "linear acceleration": Standing averages ~0.1 m/s^2 per
axis where a raw accelerometer reads 9.8 m/s^2; Running peaks near 29, impossible in g for a
watch), channels 3-5 the gyroscope in rad/s (Running spreads ~5; in deg/s it would be too small).

aeon's own loaders need pandas and scikit-learn, which are not installed (aeon comes with
--no-deps, requirements-nodeps.txt): the .ts files are read here, strictly.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASET = "BasicMotions"
SPLITS = ("train", "test")
RATE_HZ = 10.0  # the files' header: "sampled once every tenth of a second"
CHANNELS = 6  # accel x y z (m/s^2), gyro x y z (rad/s)


class GestureDataError(RuntimeError):
    """The dataset is not installed, or its file is not what this reader expects."""


@dataclass(frozen=True)
class GestureSplit:
    split: str
    accel: np.ndarray  # (N, T, 3) float64, m/s^2, gravity removed
    gyro: np.ndarray  # (N, T, 3) float64, rad/s
    labels: np.ndarray  # (N,) int64 indices into class_names
    class_names: tuple[str, ...]  # in the file's @classLabel order
    rate_hz: float = RATE_HZ

    def __len__(self) -> int:
        return len(self.labels)


def dataset_file(split: str) -> Path:
    """The installed aeon package's .ts file of `split`."""
    if split not in SPLITS:
        raise GestureDataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    try:
        root = importlib.resources.files("aeon")
    except ModuleNotFoundError:
        raise GestureDataError("the aeon package is not installed (it ships the BasicMotions recordings): "
                               "run scripts/setup.sh, or pip install --no-deps -r requirements-nodeps.txt") from None
    path = Path(str(root / "datasets" / "data" / DATASET / f"{DATASET}_{split.upper()}.ts"))
    if not path.is_file():
        raise GestureDataError(f"{path} is missing: this aeon does not ship {DATASET} (requirements-nodeps.txt pins the one that does)")
    return path


def load_split(split: str) -> GestureSplit:
    path = dataset_file(split)
    series, labels, class_names = parse_ts(path.read_text(encoding="utf-8"), str(path))
    if series.shape[1] != CHANNELS:
        raise GestureDataError(f"{path}: {series.shape[1]} channels, expected {CHANNELS} (accelerometer, gyroscope)")
    samples = series.transpose(0, 2, 1)  # (N, T, channels)
    return GestureSplit(split, np.ascontiguousarray(samples[:, :, :3]), np.ascontiguousarray(samples[:, :, 3:]),
                        labels, class_names)


def parse_ts(text: str, source: str = "<ts>") -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """An equal-length, labelled, multivariate .ts file (sktime/aeon format, no timestamps, no
    missing values) -> (series (N, channels, T) float64, labels (N,) int64, class names)."""
    header: dict[str, str] = {}
    rows: list[tuple[int, str]] = []
    in_data = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or (line.startswith("#") and not in_data):
            continue
        if in_data:
            rows.append((number, line))
        elif line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            if key.lower() == "data":
                in_data = True
            else:
                header[key.lower()] = value.strip()
        else:
            raise GestureDataError(f"{source}:{number}: expected a # comment or an @ header line before @data")
    if not in_data:
        raise GestureDataError(f"{source}: no @data line")
    expected = {"timestamps": "false", "missing": "false", "equallength": "true"}
    for key, value in expected.items():
        if header.get(key, "").lower() != value:
            raise GestureDataError(f"{source}: @{key} must be {value}, got {header.get(key, 'nothing')!r}")
    flag, *class_names = header.get("classlabel", "").split() or [""]
    if flag.lower() != "true" or not class_names:
        raise GestureDataError(f"{source}: @classLabel must be 'true' followed by the class names")
    try:
        channels = int(header.get("dimensions", "1"))
        length = int(header["serieslength"])
    except (KeyError, ValueError):
        raise GestureDataError(f"{source}: @dimensions and @seriesLength must be integers") from None
    if not rows:
        raise GestureDataError(f"{source}: no series after @data")
    series = np.empty((len(rows), channels, length))
    labels = np.empty(len(rows), dtype=np.int64)
    for i, (number, line) in enumerate(rows):
        *dimensions, label = line.split(":")
        if len(dimensions) != channels:
            raise GestureDataError(f"{source}:{number}: {len(dimensions)} channels, @dimensions says {channels}")
        if label not in class_names:
            raise GestureDataError(f"{source}:{number}: class {label!r} is not one of @classLabel {class_names}")
        labels[i] = class_names.index(label)
        for c, values in enumerate(dimensions):
            try:
                row = [float(v) for v in values.split(",")]
            except ValueError:
                raise GestureDataError(f"{source}:{number}: channel {c} has a value that is not a number") from None
            if len(row) != length:
                raise GestureDataError(f"{source}:{number}: channel {c} has {len(row)} values, @seriesLength says {length}")
            if not all(math.isfinite(v) for v in row):
                raise GestureDataError(f"{source}:{number}: channel {c} has a NaN or infinite value")
            series[i, c] = row
    return series, labels, tuple(class_names)
