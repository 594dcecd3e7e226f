"""SentryAttend, the multimodal transformer, in pure PyTorch (never imports rclpy)."""

from sentryfuse_ros.model.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    shipped_checkpoint,
)
from sentryfuse_ros.model.config import LayerShape, SentryAttendConfig
from sentryfuse_ros.model.sentry_attend import SentryAttend, live_modalities

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "LayerShape",
    "SentryAttend",
    "SentryAttendConfig",
    "live_modalities",
    "load_checkpoint",
    "save_checkpoint",
    "shipped_checkpoint",
]
