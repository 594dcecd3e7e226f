"""First-order importance of every attention head and FFN channel, measured on data.

For a structure with output a (a head's output, or an FFN hidden channel) gated by a mask m,
dL/dm = sum(a * dL/da) over its elements and tokens. Collected per example, this one quantity
gives both classic importances:

* Taylor (Michel et al. 2019):  mean over examples of |dL/dm|  (= |a x gradient|)
* Fisher (Kwon et al. 2022):    mean over examples of (dL/dm)^2

Activations are read after the model's masks, so a structure that is already pruned measures
zero: iterative pruning re-measures what remains.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend


@dataclass
class MaskGradients:
    """Per-example dL/dm: heads[l] is (N, H_l), channels[l] is (N, F_l)."""

    heads: list[Tensor]
    channels: list[Tensor]

    def taylor(self) -> tuple[list[Tensor], list[Tensor]]:
        return [g.abs().mean(0) for g in self.heads], [g.abs().mean(0) for g in self.channels]

    def fisher(self) -> tuple[list[Tensor], list[Tensor]]:
        return [g.square().mean(0) for g in self.heads], [g.square().mean(0) for g in self.channels]


class MaskGradientRecorder:
    """Collects per-example dL/dm of every head and FFN channel while installed on a model.

    Inside `with MaskGradientRecorder(model) as recorder:` every backward pass through a
    forward made there appends its per-example mask gradients; `gradients()` returns them.
    Joint training records its full-width forward this way; `mask_gradients` its calibration set.
    """

    def __init__(self, model: SentryAttend):
        self.model = model
        self._heads: list[list[Tensor]] = [[] for _ in model.blocks]
        self._channels: list[list[Tensor]] = [[] for _ in model.blocks]
        self._handles = []

    @staticmethod
    def _capture(store: list[Tensor], reduce_dims: tuple[int, ...]):
        def hook(_module, _inputs, output: Tensor):
            if not output.requires_grad:
                return  # a forward under no_grad has no backward to record
            # The gradient hook must not hold `output` itself: the tensor holds its hooks, and that
            # cycle is never freed (it leaked every training step's activations).
            activation = output.detach()

            def on_grad(grad: Tensor):
                store.append((activation * grad).sum(dim=reduce_dims))

            output.register_hook(on_grad)

        return hook

    def __enter__(self) -> "MaskGradientRecorder":
        for layer, block in enumerate(self.model.blocks):
            # Head outputs are (B, H, T, head_dim); FFN hidden activations are (B, T, F).
            self._handles.append(block.attn.head_output.register_forward_hook(self._capture(self._heads[layer], (2, 3))))
            self._handles.append(block.ffn.hidden.register_forward_hook(self._capture(self._channels[layer], (1,))))
        return self

    def __exit__(self, *_exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def gradients(self) -> MaskGradients:
        if not self._heads[0]:
            raise ValueError("no batches given: saliency needs calibration data")
        return MaskGradients([torch.cat(g) for g in self._heads], [torch.cat(g) for g in self._channels])


def mask_gradients(
    model: SentryAttend, batches: Iterable[tuple[Mapping[str, Tensor], Tensor]]
) -> MaskGradients:
    """dL/dm per example for every head and FFN channel, over `batches` of (inputs, labels).

    The inputs decide the modality subset: pass only the live modalities' tensors.
    """
    was_training = model.training
    model.eval()  # no dropout: measure the network as it will run
    try:
        with MaskGradientRecorder(model) as recorder:
            for inputs, labels in batches:
                model.zero_grad(set_to_none=True)
                # enable_grad: callers may run under no_grad/inference_mode, which would leave no graph.
                with torch.enable_grad():
                    # Sum, not mean: per-example gradients must not depend on the batch size.
                    F.cross_entropy(model(inputs), labels, reduction="sum").backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return recorder.gradients()
