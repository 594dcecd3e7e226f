"""Preprocessing on odd inputs: sizes, encodings, rates, empty, NaN; and single == batched."""

from __future__ import annotations

import array

import numpy as np
import pytest
import torch
from scipy.signal import resample_poly

from sentryfuse_ros.data.preprocess import (
    NORMALISATION,
    InvalidInput,
    audio_tensor,
    audio_tensors,
    frame_power,
    image_from_buffer,
    image_tensor,
    image_tensors,
    imu_tensor,
    log_mel_from_power,
    mel_filterbank,
    polyphase_resample,
    stft_frames,
)
from sentryfuse_ros.data.spec import INPUT_SPEC

SIZE = INPUT_SPEC.image_size
IMU_SHAPE = (INPUT_SPEC.imu_channels, INPUT_SPEC.imu_window_samples)
AUDIO_SHAPE = (INPUT_SPEC.audio_n_mels, INPUT_SPEC.audio_frames)


def test_invalid_input_is_a_value_error():
    assert issubclass(InvalidInput, ValueError)


# ----------------------------------------------------------------------------- image_from_buffer


def _pixels(height=3, width=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_mono8_buffer_is_scaled_to_unit_range():
    pixels = np.array([[0, 128, 255]], dtype=np.uint8)
    gray = image_from_buffer(pixels.tobytes(), 1, 3, "mono8", 3)
    assert gray.dtype == np.float32 and gray.shape == (1, 3)
    np.testing.assert_allclose(gray, [[0.0, 128 / 255, 1.0]])


@pytest.mark.parametrize("container", [bytes, bytearray, memoryview, lambda b: array.array("B", b), lambda b: np.frombuffer(b, np.uint8)])
def test_buffer_containers(container):
    pixels = _pixels()[..., 0]
    gray = image_from_buffer(container(pixels.tobytes()), 3, 4, "8UC1", 4)
    np.testing.assert_allclose(gray, pixels / 255.0, rtol=1e-6)


def test_colour_orders_give_the_same_gray():
    rgb = _pixels()
    bgr = rgb[..., ::-1].copy()
    alpha = np.full((3, 4, 1), 7, np.uint8)
    from_rgb = image_from_buffer(rgb.tobytes(), 3, 4, "rgb8", 12)
    for data, encoding, step in (
        (bgr, "bgr8", 12),
        (np.concatenate([rgb, alpha], 2), "rgba8", 16),
        (np.concatenate([bgr, alpha], 2), "bgra8", 16),
        (rgb.astype(np.uint16) * 257, "rgb16", 24),
    ):
        np.testing.assert_allclose(image_from_buffer(data.tobytes(), 3, 4, encoding, step), from_rgb, rtol=1e-6)
    expected = (rgb.astype(np.float32) / 255) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(from_rgb, expected, rtol=1e-5)


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_respects_byte_order(bigendian):
    values = np.array([[0, 1000, 65535]], dtype=">u2" if bigendian else "<u2")
    gray = image_from_buffer(values.tobytes(), 1, 3, "mono16", 6, is_bigendian=bigendian)
    np.testing.assert_allclose(gray, [[0.0, 1000 / 65535, 1.0]], rtol=1e-6)


def test_32fc1_passes_through():
    values = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(image_from_buffer(values.tobytes(), 2, 2, "32FC1", 8), values)


def test_row_padding_is_ignored():
    pixels = _pixels(2, 3)[..., 0]
    padded = np.concatenate([pixels, np.full((2, 5), 255, np.uint8)], axis=1)  # step 8 > width 3
    np.testing.assert_allclose(image_from_buffer(padded.tobytes(), 2, 3, "mono8", 8), pixels / 255.0, rtol=1e-6)


def test_buffer_path_matches_array_path():
    frame = _pixels(28, 28)[..., 1]
    from_message = image_from_buffer(frame.tobytes(), 28, 28, "mono8", 28)
    assert torch.equal(image_tensor(from_message), image_tensor(frame))


@pytest.mark.parametrize(
    "arguments, reason",
    [
        ((b"\x00" * 12, 3, 4, "yuv422", 4), "unsupported image encoding"),
        ((b"", 0, 4, "mono8", 4), "empty image"),
        ((b"\x00" * 12, 3, 4, "mono8", 3), "step 3 is smaller"),
        ((b"\x00" * 11, 3, 4, "mono8", 4), "11 bytes"),
        ((b"\x00" * 24, 3, 4, "mono16", 6), "step 6 is smaller"),
        ((b"\x00" * 12, -3, 4, "mono8", 4), "height"),
        ((b"\x00" * 12, 3, None, "mono8", 4), "width"),
        ((b"\x00" * 12, 3, 4, "mono8", 4.5), "step"),
        ((np.full(4, np.nan, np.float32).tobytes(), 2, 2, "32FC1", 8), "NaN"),
        ((np.full(4, 3.0, np.float32).tobytes(), 2, 2, "32FC1", 8), "[0, 1]"),
        (("not bytes", 1, 1, "mono8", 1), "bytes-like"),
    ],
)
def test_bad_buffers_are_rejected_with_a_reason(arguments, reason):
    with pytest.raises(InvalidInput, match=reason.replace("[", r"\[").replace("]", r"\]")):
        image_from_buffer(*arguments)


# ----------------------------------------------------------------------------- image_tensor


@pytest.mark.parametrize("shape", [(1, 1), (28, 28), (20, 20), (480, 640), (100, 30), (5, 200), (64, 64, 1), (33, 47, 3), (40, 40, 4)])
def test_image_of_any_size_gives_the_model_shape(shape):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    tensor = image_tensor(image)
    assert tensor.shape == (1, SIZE, SIZE) and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()


def test_28x28_uint8_is_only_normalised():
    frame = np.random.default_rng(1).integers(0, 256, size=(SIZE, SIZE), dtype=np.uint8)
    expected = (frame / 255.0 - NORMALISATION.image_mean) / NORMALISATION.image_std
    np.testing.assert_allclose(image_tensor(frame)[0].numpy(), expected, atol=1e-5)


def test_dtypes_agree():
    frame = np.random.default_rng(2).integers(0, 256, size=(56, 56), dtype=np.uint8)
    reference = image_tensor(frame)
    assert torch.allclose(image_tensor(frame.astype(np.uint16) * 257), reference, atol=1e-5)
    assert torch.allclose(image_tensor(frame / 255.0), reference, atol=1e-5)
    assert torch.allclose(image_tensor((frame / 255.0).astype(np.float16)), reference, atol=1e-2)


def test_dark_ink_is_inverted():
    frame = np.random.default_rng(3).integers(0, 256, size=(SIZE, SIZE), dtype=np.uint8)
    assert torch.allclose(image_tensor(255 - frame, ink_is_dark=True), image_tensor(frame), atol=1e-5)


def test_non_square_images_keep_their_aspect_ratio():
    wide = np.zeros((50, 150), np.uint8)
    wide[10:40, 60:90] = 255  # a 30x30 square in the middle
    tensor = image_tensor(wide)[0].numpy()
    ink = np.argwhere(tensor > 0)
    height, width = np.ptp(ink, axis=0) + 1
    assert abs(int(height) - int(width)) <= 1


def test_batched_images_match_single():
    frames = np.random.default_rng(4).integers(0, 256, size=(5, 40, 30), dtype=np.uint8)
    batch = image_tensors(frames)
    for index in range(5):
        assert torch.equal(batch[index], image_tensor(frames[index]))


@pytest.mark.parametrize(
    "image, reason",
    [
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.zeros((5, 0, 3), np.uint8), "empty"),
        (np.zeros(10, np.uint8), "HxW"),
        (np.zeros((2, 4, 4, 4), np.uint8), "HxW"),
        (np.zeros((8, 8, 5), np.uint8), "5 channels"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.full((8, 8), np.inf), "NaN or Inf"),
        (np.full((8, 8), 2.0), r"\[0, 1\]"),
        (np.full((8, 8), -0.5, np.float32), r"\[0, 1\]"),
        (np.zeros((8, 8), np.int32), "dtype"),
        (np.zeros((8, 8), bool), "dtype"),
        (None, "None"),
        ([[1, 2], [3]], "array"),
    ],
)
def test_bad_images_are_rejected_with_a_reason(image, reason):
    with pytest.raises(InvalidInput, match=reason):
        image_tensor(image)


# ----------------------------------------------------------------------------- IMU

GRAVITY = np.array([0.0, 0.0, 9.80665, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("rate", [10.0, 50.0, 99.7, 100.0, 104.0, 200.0, 400.0, 1000.0, 1666.0])
@pytest.mark.parametrize("seconds", [0.01, 0.5, 2.0, 7.3])
def test_imu_at_any_rate_and_length_gives_the_model_shape(rate, seconds):
    samples = np.tile(GRAVITY, (max(1, int(rate * seconds)), 1))
    tensor = imu_tensor(samples, rate)
    assert tensor.shape == IMU_SHAPE and tensor.dtype == torch.float32
    # A sensor at rest reads 1 g on z and nothing else, whatever the rate and length.
    expected = np.array([0, 0, 1, 0, 0, 0])[:, None]
    np.testing.assert_allclose(tensor.numpy(), np.broadcast_to(expected, IMU_SHAPE), atol=2e-3)


def test_newest_samples_are_kept_and_short_windows_left_padded():
    ramp = np.zeros((300, 6))
    ramp[:, 3] = np.arange(300)  # gyro x counts samples
    kept = imu_tensor(ramp, 100.0)[3].numpy() * NORMALISATION.gyro_unit_rads
    np.testing.assert_array_equal(kept, np.arange(100, 300))
    short = imu_tensor(ramp[:50], 100.0)[3].numpy() * NORMALISATION.gyro_unit_rads
    np.testing.assert_array_equal(short, np.concatenate([np.zeros(150), np.arange(50)]))


def test_resampling_preserves_a_slow_signal():
    t = np.arange(0, 3.0, 1 / 400)
    samples = np.zeros((len(t), 6))
    samples[:, 0] = np.sin(2 * np.pi * 1.5 * t)
    tensor = imu_tensor(samples, 400.0)[0].numpy() * NORMALISATION.accel_unit_ms2
    # 3 s at 400 Hz -> 300 samples at 100 Hz on the input's time grid; the newest 200 are kept.
    expected = np.sin(2 * np.pi * 1.5 * np.arange(100, 300) / 100)
    # Interior only: the polyphase filter holds the edge value beyond the last sample.
    np.testing.assert_allclose(tensor[:-10], expected[:-10], atol=0.02)


def test_imu_accepts_lists_and_integers():
    tensor = imu_tensor([[0, 0, 10, 0, 0, 0]] * 3, 100)
    assert tensor.shape == IMU_SHAPE


@pytest.mark.parametrize(
    "samples, rate, reason",
    [
        (np.zeros((0, 6)), 100.0, "empty"),
        (np.zeros((10, 5)), 100.0, r"shape \(T, 6\)"),
        (np.zeros(6), 100.0, r"shape \(T, 6\)"),
        (np.zeros((10, 6, 1)), 100.0, r"shape \(T, 6\)"),
        (np.full((10, 6), np.nan), 100.0, "NaN"),
        (np.full((10, 6), -np.inf), 100.0, "NaN or Inf"),
        (np.zeros((10, 6)), 0.0, "positive"),
        (np.zeros((10, 6)), -100.0, "positive"),
        (np.zeros((10, 6)), float("nan"), "positive"),
        (np.zeros((10, 6)), float("inf"), "positive"),
        (np.zeros((10, 6)), 2.0, "minimum"),
        (np.zeros((10, 6)), "fast", "number"),
        (np.zeros((10, 6)), None, "number"),
        (np.array([["a"] * 6]), 100.0, "numeric"),
    ],
)
def test_bad_imu_is_rejected_with_a_reason(samples, rate, reason):
    with pytest.raises(InvalidInput, match=reason):
        imu_tensor(samples, rate)


# ----------------------------------------------------------------------------- audio


def _tone(rate, seconds=1.0, hz=1000.0, amplitude=0.3):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _band_of(hz):
    filters = mel_filterbank(INPUT_SPEC.audio_n_fft, INPUT_SPEC.audio_n_mels, INPUT_SPEC.audio_rate_hz)
    bin_hz = np.fft.rfftfreq(INPUT_SPEC.audio_n_fft, 1 / INPUT_SPEC.audio_rate_hz)
    return int(np.argmax(filters[:, np.argmin(np.abs(bin_hz - hz))]))


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("seconds", [0.05, 1.0, 2.7])
def test_audio_at_any_rate_and_length_gives_the_model_shape(rate, seconds):
    tensor = audio_tensor(_tone(rate, seconds), rate)
    assert tensor.shape == AUDIO_SHAPE and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()
    # The tone lands in the same mel band whatever the input rate.
    assert int(tensor[:, -5].argmax()) == _band_of(1000.0)


def test_rates_agree_on_the_spectrogram():
    reference = audio_tensor(_tone(16000), 16000)
    for rate in (8000, 44100, 48000):
        # Frames near the window edges see the resampling filter's edge; compare the interior.
        assert (audio_tensor(_tone(rate), rate) - reference)[:, 3:-3].abs().max() < 0.1


def test_newest_second_is_kept_and_short_clips_are_left_padded():
    silence_then_tone = np.concatenate([np.zeros(32000, np.float32), _tone(16000)])
    assert torch.allclose(audio_tensor(silence_then_tone, 16000), audio_tensor(_tone(16000), 16000), atol=1e-4)
    short = audio_tensor(_tone(16000, 0.3), 16000)
    floor = (10 * np.log10(NORMALISATION.log_mel_floor) - NORMALISATION.log_mel_offset_db) / NORMALISATION.log_mel_scale_db
    assert torch.allclose(short[:, :60], torch.full((AUDIO_SHAPE[0], 60), floor), atol=1e-3)  # padded silence
    assert short[:, -10:].max() > floor + 2  # the tone is at the end


def test_int16_equals_scaled_float():
    pcm = (np.random.default_rng(5).standard_normal(16000) * 3000).astype(np.int16)
    assert torch.equal(audio_tensor(pcm, 16000), audio_tensor(pcm.astype(np.float64) / 32768.0, 16000))


def test_column_vector_is_mono():
    clip = _tone(16000)
    assert torch.equal(audio_tensor(clip[:, None], 16000), audio_tensor(clip, 16000))


def test_batched_audio_matches_single_exactly():
    clips = np.random.default_rng(6).standard_normal((300, 8000)).astype(np.float32) * 0.1
    batch = audio_tensors(clips, 8000)
    for index in (0, 1, 255, 256, 299):  # both sides of an internal block boundary
        assert torch.equal(batch[index], audio_tensor(clips[index], 8000))


def test_log_mel_is_per_frame_power_spectra_then_one_mel_projection():
    """What streaming_audio relies on: a frame's power spectrum is the same whichever frames it
    is computed with, and the window's power spectra give the log-mel."""
    clip = (np.random.default_rng(8).standard_normal(16000) * 0.1).astype(np.float32)
    frames = stft_frames(clip[None])
    power = frame_power(frames)
    assert power.shape == (1, AUDIO_SHAPE[1], INPUT_SPEC.audio_n_fft // 2 + 1)
    for picked in ([0], [1, 2], [100], [3, 50, 99], list(range(7, 40))):
        np.testing.assert_array_equal(frame_power(frames[0, picked]), power[0, picked])
    np.testing.assert_array_equal(log_mel_from_power(power)[0], audio_tensor(clip, 16000).numpy())
    padded = np.pad(clip, INPUT_SPEC.audio_n_fft // 2, mode="reflect")
    np.testing.assert_array_equal(frames[0], np.lib.stride_tricks.sliding_window_view(padded, 400)[::160])


def test_mel_filters_are_all_non_empty_and_ordered():
    filters = mel_filterbank(INPUT_SPEC.audio_n_fft, INPUT_SPEC.audio_n_mels, INPUT_SPEC.audio_rate_hz)
    assert filters.shape == (INPUT_SPEC.audio_n_mels, INPUT_SPEC.audio_n_fft // 2 + 1)
    assert (filters.sum(axis=1) > 0).all()
    assert (np.diff(filters.argmax(axis=1)) >= 0).all()


@pytest.mark.parametrize(
    "samples, rate, reason",
    [
        (np.zeros(0, np.float32), 16000, "empty"),
        (np.zeros((100, 2), np.float32), 16000, "mono"),
        (np.zeros((2, 2, 2), np.float32), 16000, "mono"),
        (np.full(100, np.nan, np.float32), 16000, "NaN"),
        (np.full(100, np.inf), 16000, "NaN or Inf"),
        (np.zeros(100, np.int32), 16000, "dtype"),
        (np.full(100, 20000.0), 16000, "full scale"),
        (np.zeros(100, np.float32), 0, "positive"),
        (np.zeros(100, np.float32), -16000, "positive"),
        (np.zeros(100, np.float32), 16000.5, "whole number"),
        (np.zeros(100, np.float32), 500, "minimum"),
        (np.zeros(100, np.float32), None, "number"),
    ],
)
def test_bad_audio_is_rejected_with_a_reason(samples, rate, reason):
    with pytest.raises(InvalidInput, match=reason):
        audio_tensor(samples, rate)


def test_polyphase_resample_is_scipys_default_filter():
    signal = np.random.default_rng(7).standard_normal((2, 1000))
    for up, down in ((2, 1), (1, 5), (160, 441), (25, 26)):
        np.testing.assert_array_equal(
            polyphase_resample(signal, up, down, axis=1), resample_poly(signal, up, down, axis=1)
        )
