"""SentryAttend checkpoints: weights in `<name>.safetensors`, config and metadata in `<name>.json`.

The JSON holds the format tag and version, the model config (which describes pruned, sliced
models too), the SHA-256 of the weights file and free-form metadata (training run, scores).
Loading checks each of these and fails with a CheckpointError naming the file and the reason;
pickles (torch.load) are never used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sentryfuse_ros.digest import file_sha256
from sentryfuse_ros.model.config import SentryAttendConfig
from sentryfuse_ros.model.sentry_attend import SentryAttend

FORMAT = "sentryattend"
FORMAT_VERSION = 1
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match its config."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot load checkpoint {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Checkpoint:
    model: SentryAttend
    meta: dict


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, config) paths for `path` given as `x`, `x.safetensors` or `x.json`."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def shipped_checkpoint(name: str = "sentryattend") -> Path:
    """Path of a checkpoint shipped with the package (the default the nodes load)."""
    return SHIPPED_WEIGHTS_DIR / f"{name}.safetensors"


def backbone_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of the weights file of the checkpoint at `path`: what a gate records for the
    backbone it was trained for."""
    return file_sha256(checkpoint_paths(path)[0])


def write_checkpoint_files(path: str | os.PathLike, tensors: dict, document: dict, metadata: dict | None = None) -> Path:
    """Write `tensors` as safetensors and `document` (plus the weights' SHA-256) as JSON; returns
    the weights path. Write-then-rename, so a crash never leaves a half-written checkpoint under
    the real name."""
    weights_path, config_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    partial_weights = weights_path.with_name(weights_path.name + ".partial")
    save_file({name: tensor.detach().contiguous() for name, tensor in tensors.items()}, str(partial_weights), metadata=metadata)
    document = {**document, "weights_sha256": file_sha256(partial_weights)}
    partial_config = config_path.with_name(config_path.name + ".partial")
    partial_config.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(partial_weights, weights_path)
    os.replace(partial_config, config_path)
    return weights_path


def save_checkpoint(model: SentryAttend, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write the model's weights and config; returns the weights path."""
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(), "meta": meta or {}}
    return write_checkpoint_files(path, model.state_dict(), document, metadata={"format": FORMAT})


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Rebuild the model from its config and load its weights, in eval mode on the CPU."""
    weights_path, config_path, document = read_config_document(path, FORMAT, FORMAT_VERSION, ("config", "meta"))
    try:
        config = SentryAttendConfig.from_dict(document["config"])
    except ValueError as error:
        raise CheckpointError(config_path, f"invalid model config: {error}") from error
    model = SentryAttend(config)
    model.load_state_dict(load_checked_tensors(weights_path, config_path, document, model), strict=True)
    return Checkpoint(model=model.eval(), meta=document["meta"])


def read_config_document(
    path: str | os.PathLike, format_tag: str, format_version: int, required: tuple[str, ...]
) -> tuple[Path, Path, dict]:
    """(weights path, config path, JSON document) of the checkpoint at `path`, after checking that
    both files exist and that the document has this format tag, this version, the weights digest
    and the `required` keys. The same rules for every format written by write_checkpoint_files."""
    weights_path, config_path = checkpoint_paths(path)
    for existing in (weights_path, config_path):
        if not existing.is_file():
            raise CheckpointError(existing, "file not found")
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(config_path, f"config is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != format_tag:
        raise CheckpointError(config_path, f"not a {format_tag} checkpoint config (format tag missing or different)")
    if document.get("format_version") != format_version:
        found = document.get("format_version")
        raise CheckpointError(config_path, f"format version {found!r} is not supported (expected {format_version})")
    missing = [key for key in (*required, "weights_sha256") if key not in document]
    if missing:
        raise CheckpointError(config_path, f"config lacks {missing}")
    return weights_path, config_path, document


def load_checked_tensors(weights_path: Path, config_path: Path, document: dict, module: torch.nn.Module) -> dict:
    """The tensors of `weights_path`, checked to be exactly `module`'s (names, shapes, dtypes) and
    to have the SHA-256 recorded in `document`; ready for module.load_state_dict."""
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(weights_path, f"corrupt safetensors file: {error}") from error
    _check_tensors_match(weights_path, module.state_dict(), tensors)
    # Names and shapes agree; the digest catches damaged tensor bytes the header cannot reveal.
    if file_sha256(weights_path) != document["weights_sha256"]:
        raise CheckpointError(weights_path, f"SHA-256 differs from the one in {config_path.name}: corrupt or replaced")
    return tensors


def _check_tensors_match(weights_path: Path, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    problems = [
        f"{name} has shape {tuple(found[name].shape)}, config needs {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in found and found[name].shape != tensor.shape
    ]
    problems += [f"missing {name}" for name in expected if name not in found]
    problems += [f"unexpected {name}" for name in found if name not in expected]
    problems += [
        f"{name} has dtype {found[name].dtype}, config needs {tensor.dtype}"
        for name, tensor in expected.items()
        if name in found and found[name].shape == tensor.shape and found[name].dtype != tensor.dtype
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(weights_path, f"tensors do not match the config: {shown}")
