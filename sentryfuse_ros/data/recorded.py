"""Datasets cut from recordings (`sentryfuse data from-bag`): a directory per dataset.

    <dir>/dataset.json          format tag and version, the input spec (modalities, classes,
                                shapes and rates), split sizes, where the samples came from
    <dir>/<split>.safetensors   per split: one float32 tensor per modality (N, ...) as the model
                                takes it, `labels` (N,) int64, `stamps_ns` (N,) int64 (the end of
                                each sample's window on the recording's clock)

A dataset is named by its directory, or by a bare name looked up in <data dir>/datasets/ (the
benchmark's cache directory, SENTRYFUSE_DATA_DIR). The digits benchmark is the dataset "digits".
Loading checks the JSON, the tensors' names and shapes against the spec, and the labels' range:
a clear DatasetError, never a wrong tensor.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sentryfuse_ros.data.cache import default_data_dir
from sentryfuse_ros.data.spec import InputSpec

FORMAT, FORMAT_VERSION = "sentryfuse-dataset", 1
SPLITS = ("train", "val", "test")
DIGITS = "digits"  # the benchmark (`sentryfuse data prepare`), not a directory


class DatasetError(RuntimeError):
    """A recorded dataset is missing, malformed or does not match its spec."""


@dataclass
class RecordedSplit:
    inputs: dict[str, torch.Tensor]  # modality -> (N, ...) float32
    labels: torch.Tensor  # (N,) int64 indices into spec.class_names
    stamps_ns: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def dataset_dir(name: str | os.PathLike) -> Path:
    """The directory of dataset `name`: a path holding dataset.json, or <data dir>/datasets/<name>."""
    path = Path(name)
    if (path / "dataset.json").is_file():
        return path
    if len(path.parts) == 1:
        candidate = default_data_dir() / "datasets" / path
        if (candidate / "dataset.json").is_file():
            return candidate
        raise DatasetError(f"no dataset {name!r}: neither ./{name}/dataset.json nor {candidate}/dataset.json "
                           "exists (sentryfuse data from-bag writes one)")
    raise DatasetError(f"{path} is not a dataset: it has no dataset.json")


def dataset_dir_for_writing(name: str | os.PathLike, replace: bool) -> Path:
    """Where dataset `name` is written: a bare name goes to <data dir>/datasets/<name>, a path is
    used as it is. An existing dataset is replaced only when asked."""
    path = Path(name)
    if str(name) == DIGITS:
        raise DatasetError(f"{DIGITS!r} is the benchmark's name; choose another")
    if len(path.parts) == 1:
        path = default_data_dir() / "datasets" / path
    if path.exists() and not replace:
        raise DatasetError(f"{path} exists; use --force to replace it")
    if path.exists() and not (path / "dataset.json").is_file() and any(path.iterdir()):
        raise DatasetError(f"{path} exists and is not a dataset: not replacing it")
    return path


def input_shapes(spec: InputSpec) -> dict[str, tuple[int, ...]]:
    """Per modality, the shape of one sample's model input under `spec`."""
    shapes = {"camera": (spec.image_channels, spec.image_size, spec.image_size),
              "imu": (spec.imu_channels, spec.imu_window_samples),
              "audio": (spec.audio_n_mels, spec.audio_frames)}
    return {name: shapes[name] for name in spec.modalities}


def save_dataset(directory: Path, spec: InputSpec, splits: dict[str, RecordedSplit], provenance: dict) -> Path:
    """Write the dataset (write-then-rename per file, so a crash leaves no half-written split)."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, data in splits.items():
        tensors = {name: data.inputs[name].contiguous().float() for name in spec.modalities}
        tensors |= {"labels": data.labels.long().contiguous(), "stamps_ns": data.stamps_ns.long().contiguous()}
        partial = directory / f"{split}.safetensors.partial"
        save_file(tensors, str(partial))
        os.replace(partial, directory / f"{split}.safetensors")
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_dict(),
                "splits": {split: len(data) for split, data in splits.items()}, "provenance": provenance}
    partial = directory / "dataset.json.partial"
    partial.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(partial, directory / "dataset.json")
    return directory


def read_spec(name: str | os.PathLike) -> tuple[Path, InputSpec, dict]:
    """(directory, spec, JSON document) of a recorded dataset."""
    directory = dataset_dir(name)
    path = directory / "dataset.json"
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a {FORMAT} description (format tag missing or different)")
    if document.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{path}: format version {document.get('format_version')!r} is not supported "
                           f"(expected {FORMAT_VERSION})")
    try:
        spec = InputSpec.from_dict(document.get("spec"))
    except ValueError as error:
        raise DatasetError(f"{path}: {error}") from None
    return directory, spec, document


def load_recorded_split(name: str | os.PathLike, split: str) -> tuple[RecordedSplit, InputSpec]:
    """One split of a recorded dataset and the dataset's spec, checked against each other."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; a recorded dataset has {SPLITS}")
    directory, spec, _ = read_spec(name)
    path = directory / f"{split}.safetensors"
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable safetensors file: {error}") from None
    expected = {**input_shapes(spec), "labels": (), "stamps_ns": ()}
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise DatasetError(f"{path} lacks {missing}")
    count = len(tensors["labels"])
    for key, shape in expected.items():
        if tuple(tensors[key].shape) != (count, *shape):
            raise DatasetError(f"{path}: {key} has shape {tuple(tensors[key].shape)}, the spec needs ({count}, "
                               f"{', '.join(map(str, shape))})")
    labels = tensors["labels"].long()
    if count and (int(labels.min()) < 0 or int(labels.max()) >= spec.n_classes):
        raise DatasetError(f"{path}: labels outside 0..{spec.n_classes - 1} ({spec.n_classes} classes)")
    inputs = {m: tensors[m].float() for m in spec.modalities}
    return RecordedSplit(inputs, labels, tensors["stamps_ns"].long()), spec
