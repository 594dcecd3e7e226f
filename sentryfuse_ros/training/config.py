"""Training run settings and the three variants `sentryfuse train --variant` reproduces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from sentryfuse_ros.model.config import SentryAttendConfig
from sentryfuse_ros.training.curriculum import NO_DROPOUT, ModalityDropoutCurriculum
from sentryfuse_ros.training.joint import JointConfig


@dataclass(frozen=True)
class TrainConfig:
    variant: str
    model: SentryAttendConfig = field(default_factory=SentryAttendConfig)
    curriculum: ModalityDropoutCurriculum = field(default_factory=ModalityDropoutCurriculum)
    # Joint training with SentryGate (training/joint.py); None trains the backbone alone.
    joint: JointConfig | None = None
    epochs: int = 15
    batch_size: int = 128
    peak_lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    eval_batch_size: int = 512
    # Log training loss every this many steps.
    log_every: int = 50

    def to_dict(self) -> dict:
        return asdict(self)


JOINT_VARIANT = "sentryfuse-joint"
VARIANTS = ("sentryattend", "dense", "no_dropout", JOINT_VARIANT)


def variant_config(variant: str, **overrides) -> TrainConfig:
    """The TrainConfig of a shipped variant, with optional field overrides (epochs, seed, ...)."""
    if variant == "sentryattend":
        base = TrainConfig(variant=variant)
    elif variant == "dense":
        base = TrainConfig(variant=variant, model=SentryAttendConfig().dense_twin())
    elif variant == "no_dropout":
        base = TrainConfig(variant=variant, curriculum=NO_DROPOUT)
    elif variant == JOINT_VARIANT:
        base = TrainConfig(variant=variant, joint=JointConfig())
    else:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    return replace(base, **overrides)
