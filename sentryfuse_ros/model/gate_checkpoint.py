"""SentryGate weights: `<name>.safetensors` plus `<name>.json` (format tag, gate config, digest, report).

Same conventions and failure messages as SentryAttend checkpoints (checkpoint.py). A gate is
tied to one backbone: the JSON records the backbone's weights digest, and loading a gate for a
different backbone fails instead of pruning the wrong structures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from sentryfuse_ros.model.checkpoint import (
    SHIPPED_WEIGHTS_DIR,
    CheckpointError,
    _check_tensors_match,
    _sha256,
    checkpoint_paths,
    write_checkpoint_files,
)
from sentryfuse_ros.model.sentry_gate import SentryGate, SentryGateConfig

GATE_FORMAT = "sentrygate"
GATE_FORMAT_VERSION = 1


@dataclass
class GateCheckpoint:
    gate: SentryGate
    backbone_sha256: str
    report: dict


def shipped_gate(name: str = "sentrygate") -> Path:
    return SHIPPED_WEIGHTS_DIR / f"{name}.safetensors"


def save_gate(gate: SentryGate, path, backbone_sha256: str, report: dict | None = None) -> Path:
    document = {
        "format": GATE_FORMAT,
        "format_version": GATE_FORMAT_VERSION,
        "config": gate.config.to_dict(),
        "backbone_sha256": backbone_sha256,
        "report": report or {},
    }
    return write_checkpoint_files(path, gate.state_dict(), document)


def load_gate(path, expected_backbone_sha256: str | None = None) -> GateCheckpoint:
    weights_path, config_path = checkpoint_paths(path)
    for required in (weights_path, config_path):
        if not required.is_file():
            raise CheckpointError(required, "file not found")
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(config_path, f"config is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != GATE_FORMAT:
        raise CheckpointError(config_path, f"not a {GATE_FORMAT} config (format tag missing or different)")
    if document.get("format_version") != GATE_FORMAT_VERSION:
        raise CheckpointError(config_path, f"format version {document.get('format_version')!r} is not supported")
    try:
        gate = SentryGate(SentryGateConfig.from_dict(document["config"]))
    except (KeyError, ValueError) as error:
        raise CheckpointError(config_path, f"invalid gate config: {error}") from error
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(weights_path, f"corrupt safetensors file: {error}") from error
    _check_tensors_match(weights_path, gate.state_dict(), tensors)
    if _sha256(weights_path) != document.get("weights_sha256"):
        raise CheckpointError(weights_path, "weights digest differs from the one recorded in the config")
    backbone = document.get("backbone_sha256", "")
    if expected_backbone_sha256 is not None and backbone != expected_backbone_sha256:
        raise CheckpointError(
            config_path, "this gate was trained for a different backbone (weights digest differs); retrain it"
        )
    gate.load_state_dict(tensors)
    return GateCheckpoint(gate.eval(), backbone, document.get("report", {}))
