"""Per-modality tokenizers: raw input tensor -> one summary token and n_tokens patch tokens.

camera (B, C, S, S) -> image patches; imu (B, axes, W) -> time patches over all axes; audio
(B, mels, frames) log-mel -> (mel band x frame) spectrogram patches (the digits benchmark:
(B, 1, 28, 28), (B, 6, 200), (B, 40, 101)); the shapes come from the task's input spec. Each input is first
standardised with statistics of the training set (stored as buffers, so they travel with the
checkpoint), then zero-padded to whole patches (zero = the training mean), embedded by a
strided convolution (one linear map per patch) and given learned position and modality
embeddings.

The summary token is a small MLP of the whole standardised signal plus a learned summary
embedding. Patch tokens alone learn slowly on this small, heavily corrupted benchmark (attention
starts uniform, so early on the model sees little more than the mean patch); a position-aware
view of the entire signal gives every modality a useful global token from the first steps. Its
hidden layer is kept narrow (config.summary_hidden) so that the evidence still has to pass
through the encoder's prunable heads and channels.
"""

from __future__ import annotations

import math
from math import ceil

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentryfuse_ros.model.config import SentryAttendConfig


class PatchTokenizer(nn.Module):
    def __init__(
        self,
        sample_shape: tuple[int, ...],
        patch: tuple[int, ...],
        stats_axis: int | None,
        d_model: int,
        summary_hidden: int,
        add_channel_axis: bool = False,
    ):
        """sample_shape: one sample's shape, (C, L) for a series or (C, H, W) for an image.
        patch: patch extent along the trailing (spatial or time) axes.
        stats_axis: the sample axis with its own normalisation statistics (None: one for all).
        summary_hidden: hidden width of the summary token's MLP.
        add_channel_axis: the sample is a bare (H, W) map, embedded as a one-channel image."""
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.add_channel_axis = add_channel_axis
        conv_shape = (1, *self.sample_shape) if add_channel_axis else self.sample_shape
        spatial = conv_shape[1:]
        self.padding = [ceil(size / step) * step - size for size, step in zip(spatial, patch)]
        self.n_tokens = 1
        for size, pad, step in zip(spatial, self.padding, patch):
            self.n_tokens *= (size + pad) // step
        self.patch = tuple(patch)
        convolution = nn.Conv1d if len(spatial) == 1 else nn.Conv2d
        self.embed = convolution(conv_shape[0], d_model, kernel_size=patch, stride=patch)
        stats_shape = [1] * len(self.sample_shape)
        if stats_axis is not None:
            stats_shape[stats_axis] = self.sample_shape[stats_axis]
        self.stats_axis = stats_axis
        self.register_buffer("input_mean", torch.zeros(stats_shape))
        self.register_buffer("input_std", torch.ones(stats_shape))
        self.position_embedding = nn.Parameter(torch.zeros(self.n_tokens, d_model))
        self.modality_embedding = nn.Parameter(torch.zeros(d_model))
        self.summarize = nn.Sequential(
            nn.Linear(math.prod(self.sample_shape), summary_hidden), nn.GELU(), nn.Linear(summary_hidden, d_model)
        )
        self.summary_embedding = nn.Parameter(torch.zeros(d_model))

    @torch.no_grad()
    def fit_normalization(self, samples: Tensor) -> None:
        """Set the standardisation statistics from training samples (N, *sample_shape)."""
        reduce_dims = [dim for dim in range(samples.dim()) if dim - 1 != self.stats_axis]
        self.input_mean.copy_(samples.mean(dim=reduce_dims, keepdim=True)[0])
        self.input_std.copy_(samples.std(dim=reduce_dims, keepdim=True)[0].clamp_min(1e-6))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(summary token (B, 1, d_model), patch tokens (B, n_tokens, d_model))."""
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(f"expected input of shape (B, {', '.join(map(str, self.sample_shape))}), got {tuple(x.shape)}")
        x = (x - self.input_mean) / self.input_std
        summary = (self.summarize(x.flatten(1)) + self.summary_embedding).unsqueeze(1)
        if self.add_channel_axis:
            x = x.unsqueeze(1)
        # F.pad lists the last axis first.
        x = F.pad(x, [amount for pad in reversed(self.padding) for amount in (0, pad)])
        return summary, self._embed_patches(x) + self.position_embedding + self.modality_embedding

    def _embed_patches(self, x: Tensor) -> Tensor:
        """(B, n_tokens, d_model): exactly `self.embed` (a strided convolution, one linear map per
        patch), computed as a reshape and one matrix product. At batch 1 on inputs this small the
        convolution kernel's set-up costs more than the arithmetic; tokens come out in the
        convolution's row-major patch order."""
        batch, channels, *spatial = x.shape
        grid = [size // step for size, step in zip(spatial, self.patch)]
        split = [part for count, step in zip(grid, self.patch) for part in (count, step)]
        x = x.reshape(batch, channels, *split)
        if len(spatial) == 1:  # (B, C, n, p) -> (B, n, C, p)
            x = x.permute(0, 2, 1, 3)
        else:  # (B, C, nh, ph, nw, pw) -> (B, nh, nw, C, ph, pw)
            x = x.permute(0, 2, 4, 1, 3, 5)
        patches = x.reshape(batch, self.n_tokens, -1)
        return F.linear(patches, self.embed.weight.flatten(1), self.embed.bias)


def build_tokenizers(config: SentryAttendConfig) -> nn.ModuleDict:
    """One tokenizer per modality of the task (config.input), shaped by its input spec."""
    spec, widths = config.input, (config.d_model, config.summary_hidden)
    builders = {
        # One camera statistic: brightness is global.
        "camera": lambda: PatchTokenizer(
            (spec.image_channels, spec.image_size, spec.image_size), config.camera_patch, None, *widths
        ),
        # Per axis: accelerometer and gyroscope have unrelated units and offsets.
        "imu": lambda: PatchTokenizer((spec.imu_channels, spec.imu_window_samples), (config.imu_patch,), 0, *widths),
        # Per mel band: log energy differs strongly between bands.
        "audio": lambda: PatchTokenizer(
            (spec.audio_n_mels, spec.audio_frames), config.audio_patch, 0, *widths, add_channel_axis=True
        ),
    }
    return nn.ModuleDict({name: builders[name]() for name in spec.modalities})
