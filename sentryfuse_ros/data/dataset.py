"""Loading the built tri-modal digits benchmark for training, evaluation and the sensor simulator.

    split = load_split("train")
    inputs = split.tensors()          # {"camera": (N,1,28,28), "imu": (N,6,200), "audio": (N,40,101)}
    targets = split.labels            # (N,) int64
    human = ~split.is_synthetic_voice # held-out human voices in val/test, for honest audio numbers

Camera tensors are computed at load from the stored 8-bit frames (exact); IMU and audio tensors
are stored as float16 and returned as float32. `raw(i)` (test and test_sklearn) gives the signals
a sensor would publish; preprocessing them reproduces `tensors()[...][i]` (camera exactly, IMU
and audio to float16 precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from sentryfuse_ros.data import cache
from sentryfuse_ros.data.build import audio_at_model_rate
from sentryfuse_ros.data.config import BuildConfig
from sentryfuse_ros.data.cache import CacheError, default_data_dir
from sentryfuse_ros.data.preprocess import image_tensors
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.data.voices import Voice

__all__ = ["CacheError", "Corruption", "RawSample", "TriModalSplit", "default_data_dir", "load_split"]

_SAMPLE_ARRAYS = ("labels", "image_index", "camera_frames")
_REQUIRED = {
    "train": _SAMPLE_ARRAYS + ("imu", "audio", "voice_index", "camera_severity", "audio_snr_db"),
    "val": _SAMPLE_ARRAYS + ("imu", "audio", "voice_index", "camera_severity", "audio_snr_db"),
    "test": _SAMPLE_ARRAYS + ("imu", "audio", "voice_index", "camera_severity", "raw_imu", "raw_audio_8k"),
    "test_sklearn": _SAMPLE_ARRAYS,
}
_EXPECTED_SHAPES = {
    "camera_frames": (INPUT_SPEC.image_size, INPUT_SPEC.image_size),
    "imu": (INPUT_SPEC.imu_channels, INPUT_SPEC.imu_window_samples),
    "audio": (INPUT_SPEC.audio_n_mels, INPUT_SPEC.audio_frames),
    "labels": (),
}


@dataclass(frozen=True)
class RawSample:
    """One sample's signals as sensors would deliver them."""

    image: np.ndarray  # uint8 (28, 28): the corrupted frame, bright ink on dark
    imu: np.ndarray  # float32 (200, 6): [ax ay az] m/s^2, [gx gy gz] rad/s at imu_rate_hz
    audio: np.ndarray  # float32 (16000,): mono, full scale [-1, 1], at audio_rate_hz
    label: int
    imu_rate_hz: float = INPUT_SPEC.imu_rate_hz
    audio_rate_hz: int = INPUT_SPEC.audio_rate_hz


@dataclass(frozen=True)
class Corruption:
    """Per-sample corruption draws (see DATA.md): severities in [0, 1] and the audio SNR."""

    camera_severity: torch.Tensor
    imu_severity: torch.Tensor
    audio_severity: torch.Tensor
    audio_snr_db: torch.Tensor


class TriModalSplit:
    def __init__(self, name: str, arrays: dict[str, torch.Tensor], voices: tuple[Voice, ...], camera_source: str):
        self.name = name
        self.camera_source = camera_source  # "mnist" or "sklearn-digits"
        self.voices = voices
        self.labels = arrays["labels"].long()
        self.voice_ids = arrays["voice_index"].long()
        self.is_synthetic_voice = torch.tensor([voice.is_synthetic for voice in voices])[self.voice_ids]
        self.image_index = arrays["image_index"].long()
        self.corruption = Corruption(
            arrays["camera_severity"], arrays["imu_severity"], arrays["audio_severity"], arrays["audio_snr_db"]
        )
        self._arrays = arrays
        self._tensors: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"TriModalSplit({self.name!r}, {len(self)} samples, camera={self.camera_source})"

    def voice_names(self) -> list[str]:
        """The voice id of every sample, e.g. 'fr-armelle' or 'espeak-test-fr-02'."""
        return [self.voices[index].voice_id for index in self.voice_ids.tolist()]

    def tensors(self) -> dict[str, torch.Tensor]:
        """Model inputs, float32, already preprocessed: camera (N,1,28,28), imu (N,6,200), audio (N,40,101)."""
        if self._tensors is None:
            self._tensors = {
                "camera": image_tensors(self._arrays["camera_frames"].numpy()),
                "imu": self._arrays["imu"].float(),
                "audio": self._arrays["audio"].float(),
            }
        return self._tensors

    @property
    def has_raw(self) -> bool:
        return "raw_imu" in self._arrays

    def raw(self, index: int) -> RawSample:
        """The raw signals of sample `index` (test and test_sklearn only)."""
        if not self.has_raw:
            raise CacheError(f"the {self.name} split stores model tensors only; raw signals are kept for test")
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        raw_audio = self._arrays["raw_audio_8k"][index : index + 1].numpy()
        return RawSample(
            image=self._arrays["camera_frames"][index].numpy().copy(),
            imu=self._arrays["raw_imu"][index].numpy().copy(),
            audio=audio_at_model_rate(raw_audio)[0],
            label=int(self.labels[index]),
        )


def load_split(split: str, data_dir: Path | None = None, config: BuildConfig | None = None) -> TriModalSplit:
    """Load a built split ("train", "val", "test" or "test_sklearn") from data_dir.

    `config` selects a non-default build (e.g. the small `limit` builds of the tests).
    Raises CacheError, saying to run `sentryfuse data prepare`, if it is missing, corrupt or outdated.
    """
    if split not in cache.SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {cache.SPLITS}")
    config = config or BuildConfig()
    bench_dir = cache.benchmark_dir(data_dir or default_data_dir(), config.limit)
    manifest = cache.read_manifest(bench_dir)
    cache.check_manifest(bench_dir, manifest, config.fingerprint(), verify_checksums=False)
    voices = tuple(Voice(**entry) for entry in manifest["voices"])
    if split == "test_sklearn":
        arrays = {**_read(bench_dir, "test", manifest), **_read(bench_dir, "test_sklearn", manifest)}
        return TriModalSplit(split, arrays, voices, "sklearn-digits")
    return TriModalSplit(split, _read(bench_dir, split, manifest), voices, "mnist")


def _read(bench_dir: Path, split: str, manifest: dict) -> dict[str, torch.Tensor]:
    path = cache.split_file(bench_dir, split)
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CacheError(f"{path} cannot be read ({error}): {cache.PREPARE_HINT} --force") from error
    samples = manifest["splits"][split]["samples"]
    missing = [name for name in _REQUIRED[split] if name not in arrays]
    if missing:
        raise CacheError(f"{path} lacks {missing}: {cache.PREPARE_HINT} --force")
    for name, shape in _EXPECTED_SHAPES.items():
        if name in arrays and tuple(arrays[name].shape) != (samples, *shape):
            raise CacheError(
                f"{path}: {name} has shape {tuple(arrays[name].shape)}, expected {(samples, *shape)}: "
                f"{cache.PREPARE_HINT} --force"
            )
    return arrays
