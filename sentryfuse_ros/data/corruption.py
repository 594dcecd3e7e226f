"""Per-sample corruption (every split) and augmentation (train only) of the three signals.

The corruption recipe was fixed in DATA.md before any model or probe was measured on the
benchmark, and is not tuned afterwards to reach a target accuracy. Each sample draws one
severity s ~ Uniform(0, 1) per modality, independently, so most samples have at least one
clean-ish modality but rarely all three: no single modality is enough.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from scipy.signal import butter, sosfilt

from sentryfuse_ros.data.audio_clips import CLIP_RATE_HZ, loudest_segment
from sentryfuse_ros.data.config import Augmentation, CorruptionRecipe, SignalLevels
from sentryfuse_ros.data.preprocess import polyphase_resample
from sentryfuse_ros.data.spec import INPUT_SPEC


# ----------------------------------------------------------------------------- camera


def augment_frame(frame: np.ndarray, augmentation: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Random affine warp (rotation, scale, shear, shift) about the frame centre."""
    size = frame.shape[0]
    angle = np.deg2rad(rng.uniform(-augmentation.rotation_deg, augmentation.rotation_deg))
    scale = rng.uniform(*augmentation.scale)
    shear = rng.uniform(-augmentation.shear, augmentation.shear)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.array(
        [[1.0, shear], [0.0, 1.0]]
    )
    centre = np.array([size / 2 - 0.5, size / 2 - 0.5])
    shift = rng.uniform(-augmentation.shift_px, augmentation.shift_px, size=2)
    matrix = np.column_stack([linear, centre - linear @ centre + shift])
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def corrupt_frame(frame: np.ndarray, severity: float, recipe: CorruptionRecipe, rng: np.random.Generator) -> np.ndarray:
    """uint8 frame -> corrupted uint8 frame (contrast, occluder, blur, noise), all scaled by severity."""
    size = frame.shape[0]
    image = frame.astype(np.float32) / 255.0
    contrast = 1.0 - severity * (1.0 - recipe.contrast_at_worst)
    image = rng.uniform(0.0, 1.0 - contrast) + contrast * image
    area = severity * recipe.occluder_area_at_worst * size * size
    if area >= 1.0:
        aspect = np.exp(rng.uniform(*np.log(recipe.occluder_aspect)))
        height = int(np.clip(round(np.sqrt(area * aspect)), 1, size))
        width = int(np.clip(round(area / height), 1, size))
        # Occluder centred somewhere over the 20x20 digit box.
        centre_row, centre_col = rng.uniform(4, size - 4, size=2)
        top = int(np.clip(round(centre_row - height / 2), 0, size - height))
        left = int(np.clip(round(centre_col - width / 2), 0, size - width))
        image[top : top + height, left : left + width] = rng.uniform(0.0, 1.0)
    sigma = severity * recipe.blur_sigma_px_at_worst
    if sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    image = image + rng.normal(0.0, severity * recipe.pixel_noise_sd_at_worst, size=image.shape)
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------- audio


def speech_window(
    clip: np.ndarray,
    severity: float,
    recipe: CorruptionRecipe,
    levels: SignalLevels,
    rng: np.random.Generator,
    speed: float = 1.0,
) -> tuple[np.ndarray, float]:
    """A clean clip at CLIP_RATE_HZ -> (1 s int16 window with the utterance and noise, SNR in dB)."""
    speech, level = place_utterance(clip, levels, rng, speed)
    snr_db = recipe.snr_db_clean - severity * (recipe.snr_db_clean - recipe.snr_db_worst)
    colour = recipe.noise_colours[rng.integers(len(recipe.noise_colours))]
    mixture = add_noise(speech, level, snr_db, colour, rng)
    peak = np.abs(mixture).max()
    if peak > levels.peak_limit:
        mixture *= levels.peak_limit / peak
    return np.round(mixture * 32767.0).astype(np.int16), float(snr_db)


def place_utterance(clip: np.ndarray, levels: SignalLevels, rng: np.random.Generator, speed: float = 1.0):
    """The clip (sped up or slowed down by resampling) at a random time in a silent 1 s window,
    scaled to a random speech level; returns (window, RMS of the utterance)."""
    window_len = int(INPUT_SPEC.audio_window_s * CLIP_RATE_HZ)
    if speed != 1.0:
        clip = loudest_segment(polyphase_resample(clip.astype(np.float64), 100, int(round(100 * speed))), window_len)
    speech = np.zeros(window_len)
    start = int(rng.integers(0, window_len - len(clip) + 1))
    speech[start : start + len(clip)] = clip
    level = 10 ** (rng.uniform(*levels.speech_rms_dbfs) / 20)
    speech *= level / (np.sqrt(np.mean(clip.astype(np.float64) ** 2)) + 1e-12)
    return speech, level


def add_noise(speech: np.ndarray, speech_rms: float, snr_db: float, colour: str, rng: np.random.Generator):
    """speech + coloured noise whose RMS is snr_db below speech_rms."""
    return speech + coloured_noise(len(speech), colour, rng) * (speech_rms / 10 ** (snr_db / 20))


def coloured_noise(length: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink (1/f power) or brown (1/f^2 power) noise."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequency = np.fft.rfftfreq(length)
    frequency[0] = frequency[1]  # no infinite gain at DC
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour]
    noise = np.fft.irfft(spectrum / frequency**exponent, n=length)
    noise -= noise.mean()
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


# ----------------------------------------------------------------------------- IMU


def corrupt_imu(imu: np.ndarray, severity: float, recipe: CorruptionRecipe, rng: np.random.Generator) -> np.ndarray:
    """(W, 6) IMU at the spec rate -> the same with white noise and in-band vibration scaled by severity."""
    length = imu.shape[0]
    white_sd = np.array([recipe.accel_noise_sd_at_worst_ms2] * 3 + [recipe.gyro_noise_sd_at_worst_rads] * 3)
    vibration_rms = np.array(
        [recipe.accel_vibration_rms_at_worst_ms2] * 3 + [recipe.gyro_vibration_rms_at_worst_rads] * 3
    )
    # Filter twice the window and keep the second half so the filter has settled.
    vibration = sosfilt(_vibration_filter(recipe.vibration_band_hz), rng.standard_normal((2 * length, 6)), axis=0)[length:]
    vibration /= np.sqrt(np.mean(vibration**2, axis=0)) + 1e-12
    noise = severity * (white_sd * rng.standard_normal((length, 6)) + vibration_rms * vibration)
    return (imu + noise).astype(np.float32)


@lru_cache(maxsize=4)
def _vibration_filter(band_hz: tuple[float, float]) -> np.ndarray:
    return butter(2, band_hz, btype="bandpass", fs=INPUT_SPEC.imu_rate_hz, output="sos")
