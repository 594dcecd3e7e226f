"""SentryGate weights: `<name>.safetensors` plus `<name>.json` (format tag, gate config, digest, report).

Same conventions and failure messages as SentryAttend checkpoints (checkpoint.py). A gate is
tied to one backbone: the JSON records the backbone's weights digest, and loading a gate for a
different backbone fails instead of pruning the wrong structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentryfuse_ros.model.checkpoint import (
    SHIPPED_WEIGHTS_DIR,
    CheckpointError,
    load_checked_tensors,
    read_config_document,
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


def gate_beside(weights: Path) -> Path:
    """The gate a backbone is deployed with when none is named: `sentrygate.safetensors` in the
    weights' folder (the shipped pair, and what `sentryfuse bench roundtrip` writes), so setting
    weights_path alone deploys a model trained elsewhere together with its gate."""
    return Path(weights).with_name(shipped_gate().name)


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
    weights_path, config_path, document = read_config_document(path, GATE_FORMAT, GATE_FORMAT_VERSION, ("config",))
    try:
        gate = SentryGate(SentryGateConfig.from_dict(document["config"]))
    except (KeyError, ValueError) as error:
        raise CheckpointError(config_path, f"invalid gate config: {error}") from error
    tensors = load_checked_tensors(weights_path, config_path, document, gate)
    backbone = document.get("backbone_sha256", "")
    if expected_backbone_sha256 is not None and backbone != expected_backbone_sha256:
        raise CheckpointError(
            config_path, "this gate was trained for a different backbone (weights digest differs); retrain it"
        )
    gate.load_state_dict(tensors)
    return GateCheckpoint(gate.eval(), backbone, document.get("report", {}))
