"""SentryAttend: a multimodal transformer over whichever modalities are alive.

`model(inputs)` takes a dict holding any non-empty subset of the task's modalities (camera / imu
/ audio, config.input.modalities) and returns class logits (B, n_classes). A missing modality contributes no tokens at all: its
tokenizer does not run and it has no summary token, so the sequence is shorter.

Sequence: [CLS, one summary token per live modality, patch tokens of each live modality].
CLS and the summary tokens are the global tokens of the sparse pattern (attention.py). The
classifier reads the mean of the final global tokens: each summary token gives its modality a
direct path to the output, and the mean does not depend on how many modalities are alive.

For structured pruning every layer exposes `blocks[i].attn.head_mask` (H,), `blocks[i].ffn.ffn_mask`
(F,) and the identity hook points `blocks[i].attn.head_output` (B, H, T, head_dim) and
`blocks[i].ffn.hidden` (B, T, F); see attention.py and feedforward.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.model.attention import TokenLayout
from sentryfuse_ros.model.block import EncoderBlock
from sentryfuse_ros.model.config import SentryAttendConfig
from sentryfuse_ros.model.tokenizers import build_tokenizers


class SentryAttend(nn.Module):
    def __init__(self, config: SentryAttendConfig):
        super().__init__()
        self.config = config
        d_model = config.d_model
        self.tokenizers = build_tokenizers(config)
        self.cls_token = nn.Parameter(torch.zeros(d_model))
        sparse = config.attention == "sparse_gqa"
        self.blocks = nn.ModuleList(
            EncoderBlock(d_model, config.head_dim, shape, sparse, config.dropout) for shape in config.layer_shapes()
        )
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, config.n_classes)
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for tokenizer in self.tokenizers.values():
            for embedding in (tokenizer.position_embedding, tokenizer.modality_embedding, tokenizer.summary_embedding):
                nn.init.trunc_normal_(embedding, std=0.02)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        live = live_modalities(inputs, self.config.modalities)
        batch_sizes = {name: inputs[name].shape[0] for name in live}
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"batch sizes differ between modalities: {batch_sizes}")
        summaries, patch_tokens = zip(*(self.tokenizers[name](inputs[name]) for name in live))
        cls = self.cls_token.expand(batch_sizes[live[0]], 1, -1)
        layout = TokenLayout.from_counts(1 + len(live), [tokens.shape[1] for tokens in patch_tokens])
        x = torch.cat([cls, *summaries, *patch_tokens], dim=1)
        for block in self.blocks:
            x = block(x, layout)
        return self.classifier(self.norm(x[:, : layout.n_global]).mean(dim=1))

    def set_masks(self, head_masks: Sequence[Tensor | None], ffn_masks: Sequence[Tensor | None]) -> None:
        """Set every layer's head and FFN-channel masks (1 keeps, 0 prunes; None leaves a layer as is)."""
        if len(head_masks) != len(self.blocks) or len(ffn_masks) != len(self.blocks):
            raise ValueError(f"need one head mask and one FFN mask per layer ({len(self.blocks)} layers)")
        for block, head_mask, ffn_mask in zip(self.blocks, head_masks, ffn_masks):
            if head_mask is not None and block.attn is not None:
                block.attn.head_mask.copy_(head_mask)
            if ffn_mask is not None and block.ffn is not None:
                block.ffn.ffn_mask.copy_(ffn_mask)

    @torch.no_grad()
    def fit_input_normalization(self, samples: Mapping[str, Tensor]) -> None:
        """Standardise each modality with statistics of these training samples."""
        for name in live_modalities(samples, self.config.modalities):
            self.tokenizers[name].fit_normalization(samples[name])


def live_modalities(inputs: Mapping[str, Tensor], task: Sequence[str] = MODALITIES) -> tuple[str, ...]:
    """The modalities present in `inputs`, in canonical order; keys outside the task's
    modalities, or none at all, raise."""
    unknown = set(inputs) - set(task)
    if unknown:
        raise ValueError(f"modalities {sorted(unknown)} are not inputs of this model; it takes {tuple(task)}")
    live = tuple(name for name in MODALITIES if name in inputs)
    if not live:
        raise ValueError(f"no modality given; pass at least one of {tuple(task)}")
    return live


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
