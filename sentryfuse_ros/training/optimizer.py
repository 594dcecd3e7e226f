"""AdamW with decoupled weight decay on matrices only, and a warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from sentryfuse_ros.training.config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    # Biases, norms, embeddings and learned tokens are not shrunk: decay would only fight them.
    decayed, kept = [], []
    for name, parameter in model.named_parameters():
        is_matrix_weight = parameter.dim() >= 2 and name.endswith("weight")
        (decayed if is_matrix_weight else kept).append(parameter)
    groups = [{"params": decayed, "weight_decay": config.weight_decay}, {"params": kept, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.peak_lr, betas=(0.9, 0.98))


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warm-up to peak_lr, then cosine decay to min_lr at total_steps."""
    if step < config.warmup_steps:
        return config.peak_lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    return config.min_lr + 0.5 * (config.peak_lr - config.min_lr) * (1.0 + math.cos(math.pi * progress))
