"""The change detector of change-triggered inference: fires on a new scene, stays quiet on a static
one, keeps its reference until mark(), rejects bad input, and never converts a whole frame."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from sentryfuse_ros.data.preprocess import InvalidInput, image_pixels
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.change_detector import (
    AUDIO_FLOOR_DB,
    AUDIO_WINDOW_S,
    CAMERA_GRID,
    DEFAULT_THRESHOLDS,
    IMU_WINDOW_ROWS,
    ChangeDetector,
    ChangeThresholds,
    calibration_report,
    frame_grid,
)
from sentryfuse_ros.nodes.sim_sources import SyntheticSource

RATE = 16000
CHUNK = 800  # 50 ms, sensor_sim's audio.chunk_s
IMU_ROWS_PER_TICK = 10  # 100 Hz IMU, 10 Hz ticks
REST_ROW = np.array([0.8, -2.9, 9.3, 0.0, 0.0, 0.0], dtype=np.float32)  # a tilted pen at rest
ALL = MODALITIES


def digit(column: int, size: int = 28) -> np.ndarray:
    """A dark uint8 frame with a bright bar: a stand-in digit whose place is `column`."""
    image = np.full((size, size), 12, dtype=np.uint8)
    image[4:24, column:column + 4] = 230
    return image


def rest_rows(rng, n: int, accel_sd: float = 0.02, gyro_sd: float = 0.002) -> np.ndarray:
    noise = np.array([accel_sd] * 3 + [gyro_sd] * 3) * rng.standard_normal((n, 6))
    return (REST_ROW + noise).astype(np.float32)


def gesture_rows(n: int, start: int = 0) -> np.ndarray:
    """A pen writing, starting from REST_ROW: 3 Hz strokes, 0.5 m/s^2 and 0.15 rad/s peaks."""
    t = (start + np.arange(n)) / 100.0
    wave = np.sin(2 * np.pi * 3.0 * t)
    motion = np.stack([0.5 * wave, 0.3 * wave, 0.1 * wave, 0.15 * wave, -0.1 * wave, 0.05 * wave], axis=1)
    return (REST_ROW + motion).astype(np.float32)


def noise_chunk(rng, level_db: float, n: int = CHUNK) -> np.ndarray:
    return (10 ** (level_db / 20) * rng.standard_normal(n)).astype(np.float32)


def speech_chunk(rng, level_db: float = -25.0, n: int = CHUNK, start: int = 0) -> np.ndarray:
    """A voiced sound: 180 Hz with harmonics, RMS `level_db` dBFS."""
    t = (start + np.arange(n)) / RATE
    voiced = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 6))
    voiced *= 10 ** (level_db / 20) / np.sqrt(np.mean(voiced**2))
    return (voiced + noise_chunk(rng, -60.0, n)).astype(np.float32)


def marked_detector(**observed) -> ChangeDetector:
    """A detector that has seen these (frame=..., imu=..., audio=...) and marked them."""
    detector = ChangeDetector()
    if "frame" in observed:
        detector.observe_frame(observed["frame"])
    if "imu" in observed:
        detector.observe_imu(observed["imu"])
    if "audio" in observed:
        detector.observe_audio(observed["audio"], RATE)
    detector.mark(ALL)
    assert detector.changed(ALL) is None
    return detector


# ----------------------------------------------------------------------------- thresholds


def test_default_thresholds_are_usable():
    assert DEFAULT_THRESHOLDS == ChangeThresholds()
    assert DEFAULT_THRESHOLDS.problem() is None
    assert ChangeThresholds(camera=0.0, imu=0.0, audio_db=0.0).problem() is None  # any change fires


@pytest.mark.parametrize("field, value", [
    ("camera", -0.01), ("imu", math.nan), ("audio_db", math.inf), ("imu", -math.inf),
    ("camera", "0.05"), ("audio_db", None), ("imu", True),
])
def test_bad_thresholds_are_named(field, value):
    thresholds = ChangeThresholds(**{field: value})
    problem = thresholds.problem()
    assert problem is not None and field in problem
    with pytest.raises(ValueError, match=field):
        ChangeDetector(thresholds)


def test_replaced_thresholds_apply_to_the_next_call():
    detector = marked_detector(frame=digit(4)[:, :, None])
    detector.observe_frame(digit(16)[:, :, None])
    assert detector.changed(("camera",)).startswith("camera ")
    detector.thresholds = ChangeThresholds(camera=0.99)
    assert detector.changed(("camera",)) is None


# ----------------------------------------------------------------------------- fires on change


def test_no_data_is_no_change_and_first_data_is():
    detector = ChangeDetector()
    assert detector.changed(ALL) is None
    detector.observe_imu(rest_rows(np.random.default_rng(0), 10))
    assert detector.changed(ALL) == "imu: first data"
    detector.mark(("imu",))
    assert detector.changed(ALL) is None
    detector.observe_audio(np.zeros(CHUNK, np.float32), RATE)
    assert detector.changed(ALL) == "audio: first data"
    detector.observe_frame(digit(4)[:, :, None])
    assert detector.changed(ALL) == "camera: first data"  # canonical order: camera first


def test_a_new_frame_fires_on_camera():
    detector = marked_detector(frame=digit(4)[:, :, None])
    detector.observe_frame(digit(4)[:, :, None])
    assert detector.changed(ALL) is None
    detector.observe_frame(digit(16)[:, :, None])
    reason = detector.changed(ALL)
    assert reason is not None and reason.startswith("camera ") and reason.endswith(f"> {DEFAULT_THRESHOLDS.camera:g}")
    assert detector.distance("camera") > DEFAULT_THRESHOLDS.camera


def test_a_frame_of_another_size_fires():
    detector = marked_detector(frame=digit(4)[:, :, None])
    detector.observe_frame(np.zeros((480, 640, 1), np.uint8))
    assert "frame grid changed from 14x14 to 16x16" in detector.changed(("camera",))
    assert detector.distance("camera") == math.inf


def test_a_gesture_from_rest_fires_on_imu_within_two_ticks():
    rng = np.random.default_rng(1)
    detector = ChangeDetector()
    for _ in range(10):  # 1 s at rest, marked once
        detector.observe_imu(rest_rows(rng, IMU_ROWS_PER_TICK))
        if detector.changed(ALL):
            detector.mark(ALL)
    assert detector.changed(ALL) is None
    reasons = []
    for tick in range(2):
        detector.observe_imu(gesture_rows(IMU_ROWS_PER_TICK, start=tick * IMU_ROWS_PER_TICK)
                             + rest_rows(rng, IMU_ROWS_PER_TICK) - REST_ROW)
        reasons.append(detector.changed(ALL))
    fired = [reason for reason in reasons if reason]
    assert fired and fired[0].startswith("imu ") and f"> {DEFAULT_THRESHOLDS.imu:g}" in fired[0]


def test_a_tilt_fires_on_imu_through_the_mean():
    detector = marked_detector(imu=np.repeat(REST_ROW[None], IMU_WINDOW_ROWS, axis=0))
    tilted = REST_ROW.copy()
    tilted[0] += 0.1 * 9.80665  # 0.1 g more on x: the pen tilted by ~6 degrees
    detector.observe_imu(np.repeat(tilted[None], IMU_WINDOW_ROWS, axis=0))
    assert detector.changed(ALL) == "imu 0.1 > 0.04 (ax mean)"


def test_speech_onset_and_offset_fire_on_audio():
    rng = np.random.default_rng(2)
    detector = ChangeDetector()
    for _ in range(10):  # silence with -60 dB noise
        detector.observe_audio(noise_chunk(rng, -60.0), RATE)
        if detector.changed(ALL):
            detector.mark(ALL)
    assert detector.changed(ALL) is None
    detector.observe_audio(speech_chunk(rng), RATE)  # 50 ms of speech is enough
    onset = detector.changed(ALL)
    assert onset is not None and onset.startswith("audio +") and onset.endswith("(onset)")
    for index in range(6):
        detector.observe_audio(speech_chunk(rng, start=index * CHUNK), RATE)
    detector.mark(ALL)
    assert detector.changed(ALL) is None
    for _ in range(6):  # the window is all noise again
        detector.observe_audio(noise_chunk(rng, -60.0), RATE)
    offset = detector.changed(ALL)
    assert offset is not None and offset.startswith("audio -") and offset.endswith("(offset)")


# ----------------------------------------------------------------------------- quiet when static


@pytest.mark.parametrize("accel_sd, gyro_sd", [(0.0, 0.0), (0.02, 0.002), (0.03, 0.008)])
def test_a_static_scene_never_fires(accel_sd, gyro_sd):
    """Same frame, IMU at rest (held, with the brief's and with the dataset's MEMS noise),
    silence and -60 dB noise: 300 ticks (30 s at 10 Hz), nothing fires after the first data."""
    rng = np.random.default_rng(3)
    frame = np.repeat(digit(10)[:, :, None], 3, axis=2)
    for audio in (lambda: np.zeros(CHUNK, np.float32), lambda: noise_chunk(rng, -60.0)):
        detector = ChangeDetector()
        reasons = []
        for _ in range(300):
            detector.observe_frame(frame)
            detector.observe_imu(rest_rows(rng, IMU_ROWS_PER_TICK, accel_sd, gyro_sd))
            detector.observe_audio(audio(), RATE)
            detector.observe_audio(audio(), RATE)
            reason = detector.changed(ALL)
            if reason:
                reasons.append(reason)
                detector.mark(ALL)
        assert reasons == ["camera: first data"], reasons  # mark(ALL) took all three at once


# ----------------------------------------------------------------------------- reference


def test_mark_resets_the_reference():
    detector = marked_detector(frame=digit(4)[:, :, None])
    detector.observe_frame(digit(16)[:, :, None])
    assert detector.changed(ALL)
    assert detector.changed(ALL)  # asking does not move the reference
    detector.mark(("camera",))
    assert detector.changed(ALL) is None
    detector.observe_frame(digit(4)[:, :, None])  # back to the old frame: a change from the new reference
    assert detector.changed(ALL).startswith("camera ")


def test_the_imu_reference_is_a_snapshot():
    """A reference must not follow later data (the window's summary is recomputed in place)."""
    rng = np.random.default_rng(4)
    detector = marked_detector(imu=rest_rows(rng, IMU_WINDOW_ROWS))
    detector.observe_imu(gesture_rows(IMU_WINDOW_ROWS) + 0.5)
    assert detector.changed(ALL).startswith("imu ")


def test_mark_only_takes_the_modalities_a_prediction_used():
    rng = np.random.default_rng(5)
    detector = ChangeDetector()
    detector.observe_frame(digit(4)[:, :, None])
    detector.observe_imu(rest_rows(rng, 10))
    detector.mark(("imu",))
    assert detector.changed(("imu",)) is None
    assert detector.changed(ALL) == "camera: first data"
    detector.mark(("audio",))  # no audio yet: nothing to keep, its first data will be a change
    detector.observe_audio(np.zeros(CHUNK, np.float32), RATE)
    assert detector.changed(("audio",)) == "audio: first data"


def test_changed_only_looks_at_the_modalities_asked():
    rng = np.random.default_rng(6)
    detector = marked_detector(frame=digit(4)[:, :, None], imu=rest_rows(rng, 10),
                               audio=np.zeros(CHUNK, np.float32))
    detector.observe_frame(digit(16)[:, :, None])
    assert detector.changed(("imu", "audio")) is None
    assert detector.changed(("camera",)).startswith("camera ")
    detector.observe_audio(speech_chunk(rng), RATE)
    assert detector.changed(("imu", "audio")).startswith("audio ")
    assert detector.changed(("audio", "camera")).startswith("camera ")  # canonical order
    assert detector.changed(()) is None
    assert detector.changed("audio").startswith("audio ")  # a bare name is one modality


def test_unknown_modalities_are_a_programming_error():
    detector = ChangeDetector()
    for call in (lambda: detector.changed(("lidar",)), lambda: detector.mark(("camera", "sonar")),
                 lambda: detector.forget("radar"), lambda: detector.summary("gps")):
        with pytest.raises(ValueError, match="unknown modality"):
            call()


def test_forget_drops_a_modality_and_its_reference():
    rng = np.random.default_rng(7)
    detector = marked_detector(frame=digit(4)[:, :, None], imu=rest_rows(rng, 10),
                               audio=np.zeros(CHUNK, np.float32))
    detector.forget("imu")
    assert detector.summary("imu") is None and detector.distance("imu") is None
    assert detector.changed(ALL) is None  # no data is no change
    assert detector.summary("camera") is not None and detector.summary("audio") is not None
    detector.observe_imu(rest_rows(rng, 10))  # the same rest again: new data, no reference
    assert detector.changed(ALL) == "imu: first data"
    detector.clear()
    assert all(detector.summary(m) is None for m in ALL) and detector.changed(ALL) is None


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("pixels, reason", [
    (np.zeros((28,), np.uint8), "shape"),
    (np.zeros((28, 28, 2), np.uint8), "shape"),
    (np.zeros((2, 28, 28, 1), np.uint8), "shape"),
    (np.zeros((0, 28, 1), np.uint8), "empty"),
    (np.zeros((28, 28, 1), np.int32), "dtype"),
    (np.zeros((28, 28, 1), np.bool_), "dtype"),
    (np.full((28, 28, 1), np.nan, np.float32), "NaN"),
    (np.full((28, 28, 3), np.inf, np.float32), "NaN or Inf"),
    (np.full((28, 28, 1), 1.5, np.float32), r"\[0, 1\]"),
    (np.full((28, 28, 1), -0.1, np.float64), r"\[0, 1\]"),
    ([[0, 1], [1, 0]], "numpy array"),
    (None, "numpy array"),
])
def test_bad_frames_are_rejected(pixels, reason):
    detector = marked_detector(frame=digit(4)[:, :, None])
    with pytest.raises(InvalidInput, match=reason):
        detector.observe_frame(pixels)
    assert detector.changed(ALL) is None  # the last good frame stays


@pytest.mark.parametrize("samples, reason", [
    (np.zeros((10, 5), np.float32), "shape"),
    (np.zeros((0, 6), np.float32), "shape"),
    (np.zeros((2, 10, 6), np.float32), "shape"),
    (np.zeros(7, np.float32), "shape"),
    (np.array([[0, 0, 9.8, 0, 0, np.nan]], np.float32), "NaN or Inf"),
    (np.array([[0, 0, np.inf, 0, 0, 0]] * 3, np.float64), "NaN or Inf"),
    (np.array([["a"] * 6]), "numeric"),
    ([[0.0] * 6], "numpy array"),
])
def test_bad_imu_batches_are_rejected_whole(samples, reason):
    rng = np.random.default_rng(8)
    detector = marked_detector(imu=rest_rows(rng, IMU_WINDOW_ROWS, 0.0, 0.0))
    before = detector.summary("imu").copy()
    with pytest.raises(InvalidInput, match=reason):
        detector.observe_imu(samples)
    np.testing.assert_array_equal(detector.summary("imu"), before)
    detector.observe_imu(REST_ROW)  # one (6,) row is accepted
    assert detector.changed(ALL) is None


@pytest.mark.parametrize("samples, rate, reason", [
    (np.zeros((CHUNK, 2), np.float32), RATE, "mono"),
    (np.zeros(0, np.float32), RATE, "non-empty"),
    (np.array([0.0, np.nan, 0.0], np.float32), RATE, "NaN or Inf"),
    (np.array([0.0, -np.inf], np.float32), RATE, "NaN or Inf"),
    (np.full(CHUNK, 1000.0, np.float32), RATE, "full scale"),
    (np.zeros(CHUNK, np.int32), RATE, "dtype"),
    (np.zeros(CHUNK, np.float32), 0, "sample rate"),
    (np.zeros(CHUNK, np.float32), -16000, "sample rate"),
    (np.zeros(CHUNK, np.float32), 16000.5, "sample rate"),
    (np.zeros(CHUNK, np.float32), True, "sample rate"),
    ([0.0] * CHUNK, RATE, "numpy array"),
])
def test_bad_audio_is_rejected(samples, rate, reason):
    detector = marked_detector(audio=np.zeros(CHUNK, np.float32))
    with pytest.raises(InvalidInput, match=reason):
        detector.observe_audio(samples, rate)
    assert detector.summary("audio") == AUDIO_FLOOR_DB


# ----------------------------------------------------------------------------- summaries


def test_integer_and_float_frames_of_one_image_have_one_summary():
    rng = np.random.default_rng(9)
    image8 = rng.integers(0, 256, size=(60, 80), dtype=np.uint8)
    image16 = image8.astype(np.uint16) * 257  # the same intensities on the 16-bit scale
    unit = image8.astype(np.float32) / 255.0
    reference = frame_grid(image8[:, :, None])
    for pixels in (image8, image16[:, :, None], unit[:, :, None], unit.astype(np.float64)[:, :, None],
                   np.repeat(image8[:, :, None], 3, axis=2),
                   np.concatenate([np.repeat(unit[:, :, None], 3, axis=2), np.zeros((60, 80, 1), np.float32)], axis=2)):
        np.testing.assert_allclose(frame_grid(pixels), reference, atol=1e-6)
    detector = marked_detector(frame=image8[:, :, None])
    detector.observe_frame(unit[:, :, None])
    assert detector.distance("camera") < 1e-6 and detector.changed(ALL) is None
    big_endian = image16.astype(">u2")[:, :, None]
    np.testing.assert_allclose(frame_grid(big_endian), reference, atol=1e-6)


@pytest.mark.parametrize("height, width", [(28, 28), (480, 640), (17, 33), (1, 1), (1000, 3), (16, 16)])
def test_the_grid_is_at_most_16_by_16(height, width):
    grid = frame_grid(np.zeros((height, width, 1), np.uint8))
    assert grid.dtype == np.float32 and 1 <= grid.shape[0] <= CAMERA_GRID and 1 <= grid.shape[1] <= CAMERA_GRID
    # One point at the centre of every ceil(side / 16) tile.
    steps = (math.ceil(height / CAMERA_GRID), math.ceil(width / CAMERA_GRID))
    assert grid.shape == tuple(len(range(step // 2, side, step)) for step, side in zip(steps, (height, width)))


def test_a_vga_frame_is_summarised_without_converting_it():
    """A 640x480 bgr8 message buffer, decoded as inference_node does (a read-only view of the
    bytes): the detector reads a 16x16 grid of it and allocates nothing near a frame's size."""
    rng = np.random.default_rng(10)
    frame = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    buffer = frame.tobytes()
    pixels, _ = image_pixels(buffer, 480, 640, "bgr8", 640 * 3)
    assert not pixels.flags.writeable and np.shares_memory(pixels, np.frombuffer(buffer, np.uint8))
    detector = ChangeDetector()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        detector.observe_frame(pixels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"observe_frame allocated {peak} bytes for a {pixels.nbytes}-byte frame"
    grid = detector.summary("camera")
    assert grid.shape == (16, 16)
    # The grid is the centre pixel of every 30x40 tile, averaged over the channels.
    expected = frame[15::30, 20::40].astype(np.float32).mean(axis=2) / 255.0
    np.testing.assert_allclose(grid, expected, atol=1e-6)


def test_the_imu_summary_is_the_newest_window_only():
    rng = np.random.default_rng(11)
    detector = ChangeDetector()
    detector.observe_imu(gesture_rows(200) * 3)
    rest = rest_rows(rng, IMU_WINDOW_ROWS)
    for start in range(0, IMU_WINDOW_ROWS, 7):  # in uneven batches
        detector.observe_imu(rest[start:start + 7])
    scale = np.array([9.80665] * 3 + [1.0] * 3)
    expected = np.concatenate([(rest / scale).mean(axis=0), (rest / scale).std(axis=0)])
    np.testing.assert_allclose(detector.summary("imu"), expected, rtol=1e-6, atol=1e-9)
    one = ChangeDetector()
    one.observe_imu(np.concatenate([gesture_rows(200), rest]))  # one batch longer than the window
    np.testing.assert_allclose(one.summary("imu"), expected, rtol=1e-6, atol=1e-9)


def test_the_audio_level_is_the_newest_quarter_second():
    rng = np.random.default_rng(12)
    window = round(AUDIO_WINDOW_S * RATE)
    loud = speech_chunk(rng, -20.0, n=window)
    detector = ChangeDetector()
    for start in range(0, window, 160):  # 10 ms chunks
        detector.observe_audio(loud[start:start + 160], RATE)
    level = 10 * math.log10(np.mean(loud.astype(np.float64) ** 2))
    assert detector.summary("audio") == pytest.approx(level, abs=1e-6)
    for _ in range(window // CHUNK):  # a window of silence later the loud chunks are gone
        detector.observe_audio(np.zeros(CHUNK, np.float32), RATE)
    assert detector.summary("audio") == AUDIO_FLOOR_DB
    detector.observe_audio(np.concatenate([loud, np.zeros(window, np.float32)]), RATE)  # longer than a window
    assert detector.summary("audio") == AUDIO_FLOOR_DB
    pcm = (loud * 32768).astype(np.int16)
    detector.observe_audio(pcm, RATE)
    assert detector.summary("audio") == pytest.approx(level, abs=0.01)
    detector.observe_audio(loud[:CHUNK], 48000)  # a new rate starts the level afresh
    assert detector.summary("audio") == pytest.approx(10 * math.log10(np.mean(loud[:CHUNK].astype(np.float64) ** 2)))


# ----------------------------------------------------------------------------- calibration


@pytest.mark.slow  # replays a dozen samples through every detector (~5 s)
def test_calibration_report_on_synthetic_samples():
    report = calibration_report(SyntheticSource(12), static_s=2.0, seed=1)
    camera, imu, audio = report["camera"], report["imu"], report["audio"]
    assert camera["pairs"] == 11 and camera["pairs_fired"] == 1.0 and camera["repeated_frame_fires"] == 0
    assert camera["pair_distance"]["min"] > DEFAULT_THRESHOLDS.camera
    assert camera["noise_0.01_distance"]["max"] < DEFAULT_THRESHOLDS.camera
    assert imu["held_rest_then_trajectory_fired"] == 1.0  # (synthetic IMU has no still start)
    assert imu["rest_fires"] == 0 and imu["rest_noise_fires"] == 0
    assert imu["rest_noise_max_distance"] < DEFAULT_THRESHOLDS.imu / 4
    assert audio["onset_after_silence_fired"] == 1.0
    assert audio["static"]["silence"]["fires"] == 0 and audio["static"]["white_-60dB"]["fires"] == 0
    assert audio["noise_1s"]["white"]["above_threshold"] == 0.0
    assert calibration_report(SyntheticSource(12), static_s=2.0, seed=1) == report  # reproducible
    # Thresholds too high to see anything: the report says so.
    blind = calibration_report(SyntheticSource(4), ChangeThresholds(camera=1.0, imu=10.0, audio_db=200.0), static_s=1.0)
    assert blind["camera"]["pairs_fired"] == 0.0 and blind["imu"]["held_rest_then_trajectory_fired"] == 0.0
    assert blind["audio"]["clip_range_above_threshold"] == 0.0


@pytest.mark.slow  # seconds
def test_defaults_on_the_prepared_test_split():
    """The calibration claims of the module docstring, on the first 150 test samples."""
    from sentryfuse_ros.data.cache import CacheError
    from sentryfuse_ros.data.dataset import load_split

    try:
        split = load_split("test")
    except CacheError as error:
        pytest.skip(f"no prepared benchmark: {error}")
    report = calibration_report([split.raw(index) for index in range(150)], static_s=2.0)
    assert report["camera"]["pairs"] >= 140 and report["camera"]["pairs_fired"] >= 0.99
    assert report["imu"]["still_start_fired"] >= 0.99 and report["imu"]["held_rest_then_trajectory_fired"] >= 0.99
    assert report["imu"]["rest_fires"] == 0 and report["imu"]["rest_noise_fires"] == 0
    assert report["audio"]["onset_after_silence_fired"] == 1.0
    assert report["audio"]["static"]["silence"]["fires"] == 0 and report["audio"]["static"]["white_-60dB"]["fires"] == 0
    snr = split.corruption.audio_snr_db.numpy()[:150]
    ranges = np.asarray(report["audio"]["clip_level_ranges_db"])
    assert (ranges[snr >= 10] > DEFAULT_THRESHOLDS.audio_db).mean() >= 0.99  # clear speech is heard


def test_the_module_imports_neither_torch_nor_rclpy():
    code = ("import sys, sentryfuse_ros.nodes.change_detector; "
            "print(sorted(m for m in ('torch', 'rclpy', 'cv2', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
