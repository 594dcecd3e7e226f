"""FLOPs of a real forward pass, counted by torch.utils.flop_counter (matrix products and convolutions)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def flops_per_sample(model: nn.Module, inputs: Mapping[str, Tensor]) -> float:
    """FLOPs of one inference forward on `inputs`, divided by their batch size."""
    batch = next(iter(inputs.values())).shape[0]
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(inputs)
    return counter.get_total_flops() / batch
