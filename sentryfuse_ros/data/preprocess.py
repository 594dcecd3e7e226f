"""Sensor signal -> model input tensor, one code path for dataset building and the ROS nodes.

Conventions (fixed; DATA.md repeats them):

* Camera: grayscale with **bright ink on a dark background** (the MNIST convention). Pass
  `ink_is_dark=True` for a camera looking at dark ink on light paper. Integer images are
  scaled by their dtype's maximum; float images must already be intensities in [0, 1].
  Three/four-channel arrays are RGB(A); BGR data should come through `image_from_buffer`,
  which knows the ROS encoding. Non-square images are padded to a square with the median of
  their border (the background) before resizing, so digits keep their aspect ratio.
* IMU: rows are the spec's axes of [ax ay az gx gy gz] in m/s^2 and rad/s. They are resampled
  to spec.imu_rate_hz, the newest spec.imu_window_samples are kept, and a shorter
  history is left-padded by repeating its oldest sample (as if the sensor had been held
  still before the recording started, which keeps gravity on the accelerometer).
* Audio: mono, float in [-1, 1] full scale or int16 PCM, resampled to spec.audio_rate_hz;
  the newest spec.audio_window_s are kept and a shorter clip is left-padded with silence.

Shapes and rates come from an InputSpec (data.spec): the task's, stored with its checkpoint;
the digits benchmark's INPUT_SPEC by default.

Every rejection raises InvalidInput with a reason a human can act on. Batched functions
(`image_tensors`, `imu_tensors`, `audio_tensors`) are what the single-sample functions call,
so a dataset sample and a live message with the same content give identical tensors.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import cv2
import numpy as np
import torch
from scipy.signal import firwin, resample_poly

from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec


class InvalidInput(ValueError):
    """A sensor signal that cannot be turned into a model input; the message says why."""


@dataclass(frozen=True)
class Normalisation:
    """Fixed constants that put every modality on a similar numeric scale (never fitted to data)."""

    # Classic MNIST pixel mean and std on the [0, 1] scale, bright ink.
    image_mean: float = 0.1307
    image_std: float = 0.3081
    # Accelerometer in units of standard gravity; gyroscope in rad/s (a pen in ordinary
    # handwriting turns at up to about 1 rad/s).
    accel_unit_ms2: float = 9.80665
    gyro_unit_rads: float = 1.0
    # Mel band edges: every recording in the benchmark is telephone band (8 kHz sampling), so
    # content above 4 kHz would only ever be seen live, never in training.
    mel_f_min_hz: float = 20.0
    mel_f_max_hz: float = 4000.0
    # Log-mel in dB of power, floored at -60 dB, then (dB - offset) / scale. A full-scale
    # sine gives about +40 dB, a conversational-level voice about 0..+20 dB in its mel bands.
    log_mel_floor: float = 1e-6
    log_mel_offset_db: float = -20.0
    log_mel_scale_db: float = 20.0


NORMALISATION = Normalisation()

# Lowest signal rates worth resampling: below these the signal cannot hold a digit.
MIN_IMU_RATE_HZ = 10.0
MIN_AUDIO_RATE_HZ = 1000
# A float audio peak this far above full scale means integer PCM was passed as float.
MAX_FLOAT_AUDIO_PEAK = 16.0

# ROS sensor_msgs/Image encoding -> (sample dtype, channels, grayscale weights per channel).
_LUMA_RGB = (0.299, 0.587, 0.114)
_LUMA_BGR = _LUMA_RGB[::-1]
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int, tuple[float, ...]]] = {
    "mono8": (np.dtype(np.uint8), 1, (1.0,)),
    "8UC1": (np.dtype(np.uint8), 1, (1.0,)),
    "mono16": (np.dtype(np.uint16), 1, (1.0,)),
    "16UC1": (np.dtype(np.uint16), 1, (1.0,)),
    "32FC1": (np.dtype(np.float32), 1, (1.0,)),
    "rgb8": (np.dtype(np.uint8), 3, _LUMA_RGB),
    "bgr8": (np.dtype(np.uint8), 3, _LUMA_BGR),
    "rgba8": (np.dtype(np.uint8), 4, _LUMA_RGB + (0.0,)),
    "bgra8": (np.dtype(np.uint8), 4, _LUMA_BGR + (0.0,)),
    "rgb16": (np.dtype(np.uint16), 3, _LUMA_RGB),
    "bgr16": (np.dtype(np.uint16), 3, _LUMA_BGR),
    "rgba16": (np.dtype(np.uint16), 4, _LUMA_RGB + (0.0,)),
    "bgra16": (np.dtype(np.uint16), 4, _LUMA_BGR + (0.0,)),
}


# ----------------------------------------------------------------------------- camera


def image_from_buffer(
    data: bytes | memoryview | np.ndarray,
    height: int,
    width: int,
    encoding: str,
    step: int,
    is_bigendian: bool = False,
    channels: int = 1,
) -> np.ndarray:
    """Decode sensor_msgs/Image fields into a float32 image in [0, 1]: (H, W) grayscale for
    channels=1, (H, W, 3) RGB for channels=3 (a mono image is repeated, alpha dropped)."""
    pixels, weights = image_pixels(data, height, width, encoding, step, is_bigendian)
    if channels == 3:
        rgb = _to_unit_rgb(pixels, bgr_order=weights[:3] == _LUMA_BGR)
        _check_unit_range(rgb)
        return rgb
    gray = _to_unit_gray(pixels, weights)
    _check_unit_range(gray)
    return gray


def image_pixels(data, height: int, width: int, encoding: str, step: int,
                 is_bigendian: bool = False) -> tuple[np.ndarray, tuple[float, ...]]:
    """Checked sensor_msgs/Image fields (as image_from_buffer takes them) -> (H, W, C) samples and
    the encoding's grayscale weights,
    without converting a pixel (a view of the buffer for native-order data): what decides whether
    a frame is valid, for a consumer (heartbeat_monitor) that needs no more than that."""
    if encoding not in IMAGE_ENCODINGS:
        raise InvalidInput(f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}")
    sample_dtype, channels, weights = IMAGE_ENCODINGS[encoding]
    height, width, step = (_count(value, name) for name, value in (("height", height), ("width", width), ("step", step)))
    if height == 0 or width == 0:
        raise InvalidInput(f"empty image ({height}x{width})")
    row_bytes = width * channels * sample_dtype.itemsize
    if step < row_bytes:
        raise InvalidInput(f"image step {step} is smaller than width*bytes_per_pixel = {row_bytes} for {encoding}")
    raw = _as_byte_array(data)
    if raw.size != step * height:
        raise InvalidInput(f"image data has {raw.size} bytes, expected step*height = {step}*{height} = {step * height}")
    rows = np.ascontiguousarray(raw.reshape(height, step)[:, :row_bytes])
    byte_order = ">" if is_bigendian else "<"
    # copy=False: native-order samples (every uint8 image) are read straight from the message buffer.
    pixels = rows.view(sample_dtype.newbyteorder(byte_order)).astype(sample_dtype, copy=False)
    pixels = pixels.reshape(height, width, channels)
    if pixels.dtype.kind == "f":  # float intensities must be finite and in [0, 1] (integers always are)
        _check_finite_image(pixels)
        _check_unit_range(pixels)
    return pixels, weights


def image_tensor(image: np.ndarray, *, ink_is_dark: bool = False, spec: InputSpec = INPUT_SPEC) -> torch.Tensor:
    """Any HxW or HxWxC image (uint8/uint16/float in [0, 1]) -> normalised (C, S, S) float32,
    C and S from the spec."""
    return image_tensors(_as_array(image, "image")[None], ink_is_dark=ink_is_dark, spec=spec)[0]


def image_tensors(images: np.ndarray, *, ink_is_dark: bool = False, spec: InputSpec = INPUT_SPEC) -> torch.Tensor:
    """A batch (N, H, W) or (N, H, W, C) of same-sized images -> (N, C, S, S) float32: grayscale
    (C = 1) or RGB (C = 3) as the spec says."""
    images = _as_array(images, "image batch")
    if images.ndim not in (3, 4):
        raise InvalidInput(f"image must be HxW or HxWxC, got shape {images.shape[1:]}")
    if images.ndim == 4 and images.shape[-1] not in (1, 3, 4):
        raise InvalidInput(f"image has {images.shape[-1]} channels; expected 1, 3 (RGB) or 4 (RGBA)")
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise InvalidInput(f"empty image (shape {images.shape[1:]})")
    channels = 1 if images.ndim == 3 else images.shape[-1]
    pixels = images.reshape(*images.shape[:3], channels)
    if spec.image_channels == 3:
        frames = _to_unit_rgb(pixels, bgr_order=False)
    else:
        frames = _to_unit_gray(pixels, {1: (1.0,), 3: _LUMA_RGB, 4: _LUMA_RGB + (0.0,)}[channels])
    _check_unit_range(frames)
    if ink_is_dark:
        frames = np.float32(1.0) - frames
    size = spec.image_size
    out = np.empty((frames.shape[0], spec.image_channels, size, size), dtype=np.float32)
    for index, frame in enumerate(frames):
        resized = _square_resize(frame, size)
        out[index] = resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)
    out -= np.float32(NORMALISATION.image_mean)
    out /= np.float32(NORMALISATION.image_std)
    return torch.from_numpy(out)


def _to_unit_gray(pixels: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """(..., C) samples -> (...) float32 intensities in [0, 1] by the dtype's full scale."""
    if pixels.dtype == np.uint8 or pixels.dtype == np.uint16:
        scaled = pixels.astype(np.float32)
        scaled /= np.float32(np.iinfo(pixels.dtype).max)
    elif pixels.dtype.kind == "f":
        scaled = pixels.astype(np.float32)
        _check_finite_image(scaled)
    else:
        raise InvalidInput(f"image dtype {pixels.dtype} not supported; use uint8, uint16 or float in [0, 1]")
    if len(weights) == 1:
        return scaled[..., 0]
    return np.tensordot(scaled, np.asarray(weights, dtype=np.float32), axes=([-1], [0])).astype(np.float32, copy=False)


def _to_unit_rgb(pixels: np.ndarray, bgr_order: bool) -> np.ndarray:
    """(..., C) samples, C in 1/3/4 -> (..., 3) float32 RGB in [0, 1] (mono repeated, alpha dropped)."""
    channels = pixels.shape[-1]
    if channels == 1:
        colour = np.repeat(pixels, 3, axis=-1)
    else:
        colour = pixels[..., 2::-1] if bgr_order else pixels[..., :3]
    return np.stack([_to_unit_gray(colour[..., [c]], (1.0,)) for c in range(3)], axis=-1)


def _check_finite_image(pixels: np.ndarray) -> None:
    if not np.isfinite(pixels).all():
        raise InvalidInput("image contains NaN or Inf")


def _check_unit_range(gray: np.ndarray) -> None:
    low, high = float(gray.min()), float(gray.max())
    if low < 0.0 or high > 1.0:
        raise InvalidInput(f"float image intensities must lie in [0, 1], got [{low:.3g}, {high:.3g}]")


def _square_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """(H, W) or (H, W, 3) -> (size, size[, 3]), padded to a square with the border's median."""
    height, width = frame.shape[:2]
    if height != width:
        border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
        background = np.median(border, axis=0)
        value = float(background) if frame.ndim == 2 else [float(v) for v in background]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        frame = cv2.copyMakeBorder(
            frame, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT, value=value
        )
    if frame.shape[0] == size:
        return frame
    interpolation = cv2.INTER_AREA if frame.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(frame, (size, size), interpolation=interpolation)


# ----------------------------------------------------------------------------- IMU


def imu_tensor(samples: np.ndarray, rate_hz: float, spec: InputSpec = INPUT_SPEC) -> torch.Tensor:
    """(T, A) rows of the spec's axes (all six: [ax ay az gx gy gz]) at rate_hz -> normalised
    (A, W) float32 at the spec rate."""
    return imu_tensors(_as_array(samples, "IMU samples")[None], rate_hz, spec)[0]


def imu_tensors(samples: np.ndarray, rate_hz: float, spec: InputSpec = INPUT_SPEC) -> torch.Tensor:
    """A batch (N, T, A) of equally long IMU recordings -> (N, A, W) float32."""
    samples = _as_array(samples, "IMU batch")
    channels = spec.imu_channels
    if samples.ndim != 3 or samples.shape[2] != channels:
        raise InvalidInput(f"IMU samples must have shape (T, {channels}) ({', '.join(spec.imu_axes)}), "
                           f"got {samples.shape[1:]}")
    if samples.shape[1] == 0:
        raise InvalidInput("IMU window is empty (0 samples)")
    if samples.dtype.kind not in "fiu":
        raise InvalidInput(f"IMU samples must be numeric, got dtype {samples.dtype}")
    samples = samples.astype(np.float64)
    if not np.isfinite(samples).all():
        raise InvalidInput("IMU samples contain NaN or Inf")
    rate_hz = _check_rate(rate_hz, MIN_IMU_RATE_HZ, "IMU")
    resampled = _resample(samples, rate_hz, spec.imu_rate_hz, axis=1, padtype="edge")
    window = spec.imu_window_samples
    resampled = resampled[:, -window:]
    missing = window - resampled.shape[1]
    if missing > 0:
        resampled = np.pad(resampled, ((0, 0), (missing, 0), (0, 0)), mode="edge")
    units = np.array([NORMALISATION.accel_unit_ms2 if axis.startswith("accel") else NORMALISATION.gyro_unit_rads
                      for axis in spec.imu_axes])
    normalised = (resampled / units).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 2, 1)))


# ----------------------------------------------------------------------------- audio


def audio_tensor(samples: np.ndarray, sample_rate: int, spec: InputSpec = INPUT_SPEC) -> torch.Tensor:
    """Mono samples (float in [-1, 1] or int16) at any rate -> normalised log-mel (M, F) float32."""
    samples = _as_array(samples, "audio")
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise InvalidInput(f"audio must be mono (1-D samples), got shape {samples.shape}")
    return audio_tensors(samples[None], sample_rate, spec)[0]


def audio_tensors(samples: np.ndarray, sample_rate: int, spec: InputSpec = INPUT_SPEC) -> torch.Tensor:
    """A batch (N, T) of equally long mono clips -> (N, M, F) float32 log-mel spectrograms."""
    return torch.from_numpy(log_mel(resample_audio(samples, sample_rate, spec), spec))


def resample_audio(samples: np.ndarray, sample_rate: int, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """(N, T) mono clips -> (N, T') float64 at the spec's audio rate, validated."""
    samples = _as_array(samples, "audio batch")
    if samples.ndim != 2:
        raise InvalidInput(f"audio batch must have shape (N, T), got {samples.shape}")
    if samples.shape[1] == 0:
        raise InvalidInput("audio clip is empty (0 samples)")
    if samples.dtype == np.int16:
        samples = samples.astype(np.float64) / 32768.0
    elif samples.dtype.kind == "f":
        samples = samples.astype(np.float64)
        check_float_audio(samples)
    else:
        raise InvalidInput(f"audio dtype {samples.dtype} not supported; use float in [-1, 1] or int16")
    return _resample(samples, audio_rate(sample_rate), spec.audio_rate_hz, axis=1, padtype="constant")


def check_float_audio(samples: np.ndarray) -> None:
    """Reject float samples that are not finite or not on the full-scale [-1, 1] convention."""
    peak = float(np.abs(samples).max())  # one pass: a NaN anywhere makes the peak NaN, an Inf Inf
    if not math.isfinite(peak):
        raise InvalidInput("audio contains NaN or Inf")
    if peak > MAX_FLOAT_AUDIO_PEAK:
        raise InvalidInput(f"float audio must be full scale [-1, 1], got peak {peak:.4g}; scale integer PCM by 1/32768")


def audio_rate(sample_rate) -> int:
    """A usable audio sample rate as a whole number of Hz."""
    rate = _check_rate(sample_rate, MIN_AUDIO_RATE_HZ, "audio")
    if rate != int(rate):
        raise InvalidInput(f"audio sample rate must be a whole number of Hz, got {sample_rate!r}")
    return int(rate)


# Clips per FFT block: bounds the framed copy (block x frames x n_fft float64) to ~80 MB.
_LOG_MEL_BLOCK = 256


def log_mel(audio: np.ndarray, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """(N, T) float64 audio at the spec rate -> (N, M, F) float32 normalised log-mel, newest window."""
    window = spec.audio_window_samples
    audio = audio[:, -window:]
    if audio.shape[1] < window:
        audio = np.pad(audio, ((0, 0), (window - audio.shape[1], 0)))
    out = np.empty((audio.shape[0], spec.audio_n_mels, spec.audio_frames), dtype=np.float32)
    for start in range(0, audio.shape[0], _LOG_MEL_BLOCK):
        out[start : start + _LOG_MEL_BLOCK] = _log_mel_block(audio[start : start + _LOG_MEL_BLOCK], spec)
    return out


def _log_mel_block(audio: np.ndarray, spec: InputSpec) -> np.ndarray:
    # float32 from framing on: twice as fast as float64 and far below the signal's own noise.
    return log_mel_from_power(frame_power(stft_frames(audio.astype(np.float32), spec), spec), spec)


def stft_frames(audio: np.ndarray, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """(N, T) audio, T > n_fft // 2 -> (N, 1 + T // hop, n_fft) view of its frames, reflect-padded
    by n_fft // 2 at both ends (np.pad's "reflect", by slices: np.pad's overhead is a third of a
    streamed snapshot)."""
    n_fft, hop = spec.audio_n_fft, spec.audio_hop
    half = n_fft // 2
    padded = np.concatenate([audio[:, half:0:-1], audio, audio[:, -2 : -half - 2 : -1]], axis=1)
    return np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop]


def frame_power(frames: np.ndarray, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """(..., n_fft) float32 frames -> (..., n_fft // 2 + 1) float32 Hann-windowed power spectra.
    Each frame's spectrum depends on that frame alone, so frames can be computed in any grouping."""
    spectrum = np.fft.rfft(frames * _hann(spec.audio_n_fft), axis=-1)
    return spectrum.real**2 + spectrum.imag**2


def log_mel_from_power(power: np.ndarray, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """(N, F, bins) float32 power spectra -> (N, M, F) float32 normalised log-mel.
    The mel projection is a BLAS matrix product whose rounding depends on the matrix's shape and
    a row's place in it: only an (N, F, bins) input with the frames in window order gives the
    offline path's values bit for bit."""
    mel_power = power @ mel_filterbank(spec.audio_n_fft, spec.audio_n_mels, spec.audio_rate_hz).T
    db = np.float32(10.0) * np.log10(mel_power + np.float32(NORMALISATION.log_mel_floor))
    normalised = (db - np.float32(NORMALISATION.log_mel_offset_db)) / np.float32(NORMALISATION.log_mel_scale_db)
    return normalised.transpose(0, 2, 1)


@lru_cache(maxsize=4)
def _hann(length: int) -> np.ndarray:
    # Periodic Hann, as torch.stft / librosa use for spectral analysis.
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float32)


@lru_cache(maxsize=4)
def mel_filterbank(n_fft: int, n_mels: int, rate_hz: int) -> np.ndarray:
    """(n_mels, n_fft//2 + 1) triangular filters on the HTK mel scale between the band edges."""
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / rate_hz)

    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges_hz = mel_to_hz(
        np.linspace(hz_to_mel(NORMALISATION.mel_f_min_hz), hz_to_mel(NORMALISATION.mel_f_max_hz), n_mels + 2)
    )
    left, centre, right = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz - left) / (centre - left)
    falling = (right - bin_hz) / (right - centre)
    filters = np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)
    filters.setflags(write=False)
    return filters


# ----------------------------------------------------------------------------- shared


def _as_array(value, what: str) -> np.ndarray:
    if value is None:
        raise InvalidInput(f"{what} is None")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{what} is not an array: {error}") from error
    if array.dtype == object:
        raise InvalidInput(f"{what} must be a numeric array (ragged or non-numeric input given)")
    if array.size == 0:
        raise InvalidInput(f"{what} is empty (shape {array.shape})")
    return array


def _check_rate(rate, minimum: float, what: str) -> float:
    try:
        rate = float(rate)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{what} rate must be a number, got {rate!r}") from error
    if not math.isfinite(rate) or rate <= 0:
        raise InvalidInput(f"{what} rate must be a positive finite number of Hz, got {rate}")
    if rate < minimum:
        raise InvalidInput(f"{what} rate {rate} Hz is below the supported minimum of {minimum} Hz")
    return rate


def _count(value, name: str) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise InvalidInput(f"image {name} must be a non-negative integer, got {value!r}") from None
    if count < 0:
        raise InvalidInput(f"image {name} must be a non-negative integer, got {value!r}")
    return count


def _as_byte_array(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError as error:
        raise InvalidInput(f"image data must be bytes-like, got {type(data).__name__}") from error


def _resample(signal: np.ndarray, rate_from: float, rate_to: float, axis: int, padtype: str) -> np.ndarray:
    """Polyphase resampling by the closest ratio with a denominator of at most 1000."""
    ratio = resample_ratio(rate_from, rate_to)
    if ratio == 1:
        return signal
    return polyphase_resample(signal, ratio.numerator, ratio.denominator, axis=axis, padtype=padtype)


def resample_ratio(rate_from: float, rate_to: float) -> Fraction:
    """up/down of the polyphase resampling from rate_from to rate_to (1 for equal rates)."""
    return Fraction(rate_to / rate_from).limit_denominator(1000) if rate_from != rate_to else Fraction(1)


def polyphase_resample(signal: np.ndarray, up: int, down: int, axis: int = 0, padtype: str = "constant") -> np.ndarray:
    """scipy.signal.resample_poly with its default Kaiser low-pass, designed once per ratio."""
    divisor = math.gcd(up, down)
    up, down = up // divisor, down // divisor
    if up == down:
        return signal.copy()
    return resample_poly(signal, up, down, axis=axis, window=polyphase_filter(up, down), padtype=padtype)


@lru_cache(maxsize=32)
def polyphase_filter(up: int, down: int) -> np.ndarray:
    """The low-pass resample_poly designs when given no coefficients (window=("kaiser", 5.0))."""
    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
