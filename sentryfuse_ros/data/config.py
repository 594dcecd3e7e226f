"""Every parameter of the tri-modal digits benchmark in one place (DATA.md explains them).

Changing any value here changes the build fingerprint, so existing caches are reported as
outdated and rebuilt by `sentryfuse data prepare`. This module imports nothing heavy, so the
up-to-date check of `prepare` stays instant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from sentryfuse_ros.data.cache import FORMAT_VERSION
from sentryfuse_ros.data.sources import SOURCES
from sentryfuse_ros.data.spec import INPUT_SPEC


@dataclass(frozen=True)
class SyntheticVoicePlan:
    """How many espeak-ng voices per language and split, and the ranges their settings are drawn from."""

    seed: int = 7
    train_voices_per_language: int = 32
    held_out_voices_per_language: int = 4  # in each of val and test
    held_out_variants: int = 10  # variants reserved for each of val and test
    pitch_range: tuple[int, int] = (20, 80)
    speed_range_wpm: tuple[int, int] = (120, 200)

    def voices_per_language(self, split: str) -> int:
        return self.train_voices_per_language if split == "train" else self.held_out_voices_per_language


@dataclass(frozen=True)
class ClipVariants:
    """Pre-baked train-only variants of each clean clip."""

    human_pitch_shifts_cents: tuple[int, ...] = (-300, -150, 150, 300)
    gsm_round_trip: bool = True
    # Longer clips keep their loudest max_clip_s (a few recordings end in long breaths), so every
    # utterance fits the 1 s window with room to shift.
    max_clip_s: float = 0.95


@dataclass(frozen=True)
class PenModel:
    """Ranges (uniform) of the per-recording writing parameters and the sensor's noise."""

    digit_height_m: tuple[float, float] = (0.015, 0.035)
    slant_deg: tuple[float, float] = (-12.0, 12.0)
    writing_time_s: tuple[float, float] = (0.8, 1.4)  # pen down, whole digit
    pen_up_time_s: tuple[float, float] = (0.12, 0.25)  # per lift between strokes
    lift_height_m: tuple[float, float] = (0.002, 0.006)
    rest_s: float = 0.1  # at least this much stillness before and after writing
    tilt_deg: tuple[float, float] = (25.0, 45.0)
    azimuth_deg: tuple[float, float] = (-70.0, -20.0)  # direction the barrel leans, from +x
    hand_follow: tuple[float, float] = (0.3, 0.8)  # fraction of tip motion the grip follows
    hand_lag_s: float = 0.06
    hand_smoothing_s: float = 0.012
    roll_wobble_deg: tuple[float, float] = (0.5, 3.0)
    roll_rate_hz: tuple[float, float] = (0.2, 1.0)
    pen_length_m: float = 0.14
    sensor_from_tip_m: float = 0.10
    internal_rate_hz: int = 500
    accel_bias_sd_ms2: float = 0.08
    gyro_bias_sd_rads: float = 0.02
    accel_noise_sd_ms2: float = 0.03
    gyro_noise_sd_rads: float = 0.008


@dataclass(frozen=True)
class CorruptionRecipe:
    """Per-sample corruption, fixed in DATA.md before anything was measured; s is the severity."""

    # Camera, on [0, 1] intensities of the 28x28 frame, in this order:
    contrast_at_worst: float = 0.35  # contrast c = 1 - s (1 - this); frame = b + c frame, b ~ U(0, 1 - c)
    occluder_area_at_worst: float = 0.3  # occluder area = s * this * frame area, flat grey U(0, 1)
    occluder_aspect: tuple[float, float] = (0.5, 2.0)
    blur_sigma_px_at_worst: float = 1.2  # Gaussian blur sigma = s * this
    pixel_noise_sd_at_worst: float = 0.25  # additive Gaussian noise sd = s * this, then clip and 8-bit
    # Audio: noise over the whole 1 s window at SNR = clean - s (clean - worst), relative to the
    # speech power over the utterance.
    snr_db_clean: float = 20.0
    snr_db_worst: float = -10.0
    noise_colours: tuple[str, ...] = ("white", "pink", "brown")
    # IMU, added to the measured signal: white noise and in-band vibration (1-10 Hz, where
    # handwriting lives, so filtering cannot remove it), both scaled by s.
    accel_noise_sd_at_worst_ms2: float = 0.5
    gyro_noise_sd_at_worst_rads: float = 0.25
    accel_vibration_rms_at_worst_ms2: float = 1.0
    gyro_vibration_rms_at_worst_rads: float = 0.3
    vibration_band_hz: tuple[float, float] = (1.0, 10.0)


@dataclass(frozen=True)
class Augmentation:
    """Train-only variation on top of the corruption (val/test frames are the images as they are)."""

    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift_px: float = 2.0
    shear: float = 0.15
    speech_speed: tuple[float, float] = (0.9, 1.1)  # resampling: tempo and pitch together


@dataclass(frozen=True)
class SignalLevels:
    """Natural variation in every split (not corruption): how loud the speaker is."""

    speech_rms_dbfs: tuple[float, float] = (-30.0, -15.0)
    peak_limit: float = 0.99  # a mixture that would clip is scaled down to this peak, like an AGC


@dataclass(frozen=True)
class SplitSizes:
    train: int = 15000
    val: int = 2000
    test: int = 3000  # test_sklearn has the same size: the test samples with other camera images


@dataclass(frozen=True)
class ImagesPerClass:
    """Disjoint pools of the 500 MNIST images per class."""

    train: int = 300
    val: int = 50
    test: int = 150


@dataclass(frozen=True)
class HumanShare:
    """Share of a split's audio clips spoken by its human voices (the rest: its espeak-ng voices)."""

    train: float = 0.4
    val: float = 0.5
    test: float = 0.5


@dataclass(frozen=True)
class BuildConfig:
    """The whole recipe of a build; its fingerprint names the cache it produces."""

    seed: int = 20240611
    sizes: SplitSizes = field(default_factory=SplitSizes)
    images_per_class: ImagesPerClass = field(default_factory=ImagesPerClass)
    human_share: HumanShare = field(default_factory=HumanShare)
    synthetic_voices: SyntheticVoicePlan = field(default_factory=SyntheticVoicePlan)
    clip_variants: ClipVariants = field(default_factory=ClipVariants)
    pen: PenModel = field(default_factory=PenModel)
    corruption: CorruptionRecipe = field(default_factory=CorruptionRecipe)
    augmentation: Augmentation = field(default_factory=Augmentation)
    levels: SignalLevels = field(default_factory=SignalLevels)
    limit: int | None = None  # small builds for tests: at most this many samples per split

    def size(self, split: str) -> int:
        size = getattr(self.sizes, split)
        return size if self.limit is None else min(size, self.limit)

    def fingerprint(self) -> str:
        payload = [FORMAT_VERSION, asdict(self), [source.package for source in SOURCES], _built_shapes()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _built_shapes() -> dict:
    """What of INPUT_SPEC the build depends on (the shapes and rates it writes), under the names
    the fingerprint has always used: spec fields that do not change the build (class names,
    modalities) leave existing caches valid."""
    spec = INPUT_SPEC
    names = ("image_size", "imu_rate_hz", "imu_window_samples", "audio_rate_hz", "audio_window_s",
             "audio_n_fft", "audio_hop", "audio_n_mels")
    return {**{name: getattr(spec, name) for name in names}, "imu_channels": spec.imu_channels}
