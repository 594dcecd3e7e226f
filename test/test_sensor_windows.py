"""The inference node's sensor windows: bounded, stamp-aligned, and honest about what they skip."""

import numpy as np
import pytest

from sentryfuse_ros.nodes.sensor_windows import IMU_BUFFER_FACTOR, NS_PER_S, SensorWindows

T0 = 1_000 * NS_PER_S


def _fill(windows, seconds=2.0, start_ns=T0, audio_rate=16000):
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    windows.add_image(start_ns + int(seconds * NS_PER_S), "camera_optical_frame", image)
    for i in range(int(seconds * 100)):
        windows.add_imu(start_ns + i * NS_PER_S // 100, "imu_link", np.full(6, 0.1, dtype=np.float32))
    chunk = int(audio_rate * 0.05)
    for i in range(int(seconds / 0.05)):
        windows.add_audio(start_ns + i * NS_PER_S // 20, "microphone", np.zeros(chunk, np.float32), audio_rate)


def test_full_windows_give_model_shaped_tensors_and_the_newest_stamp():
    windows = SensorWindows()
    _fill(windows)
    snapshot = windows.snapshot(("camera", "imu", "audio"), max_skew_s=0.5)
    assert snapshot.skipped == {}
    assert {name: tuple(t.shape) for name, t in snapshot.inputs.items()} == {
        "camera": (1, 1, 28, 28), "imu": (1, 6, 200), "audio": (1, 40, 101)
    }
    assert snapshot.stamp_ns == T0 + 2 * NS_PER_S and snapshot.frame_id == "camera_optical_frame"


def test_only_requested_modalities_are_built():
    windows = SensorWindows()
    _fill(windows)
    assert set(windows.snapshot(("audio",), 0.5).inputs) == {"audio"}


def test_half_empty_windows_and_missing_sensors_are_skipped_with_reasons():
    windows = SensorWindows()
    windows.add_imu(T0, "imu", np.zeros(6, np.float32))
    windows.add_imu(T0 + NS_PER_S // 10, "imu", np.zeros(6, np.float32))
    snapshot = windows.snapshot(("camera", "imu"), 0.5)
    assert snapshot.inputs == {}
    assert snapshot.skipped["camera"] == "no data yet"
    assert "IMU window 0.10 s" in snapshot.skipped["imu"]


def test_a_lagging_modality_is_left_out():
    windows = SensorWindows()
    _fill(windows)
    windows.add_image(T0 + 5 * NS_PER_S, "cam", np.zeros((28, 28), np.float32))  # camera is 3 s ahead
    snapshot = windows.snapshot(("camera", "imu", "audio"), max_skew_s=0.5)
    assert set(snapshot.inputs) == {"camera"}
    assert "behind camera" in snapshot.skipped["imu"]


def test_memory_stays_bounded_and_a_rate_change_restarts_audio():
    windows = SensorWindows()
    _fill(windows, seconds=20.0)
    assert len(windows._imu) == IMU_BUFFER_FACTOR * 200
    assert windows._audio.size == 16000
    windows.add_audio(T0 + 30 * NS_PER_S, "mic", np.zeros(400, np.float32), 8000)
    assert windows._audio.size == 400
    assert "audio window" in windows.snapshot(("audio",), 0.5).skipped["audio"]


def test_imu_rate_is_measured_from_stamps():
    windows = SensorWindows()
    for i in range(400):  # 200 Hz for 2 s
        windows.add_imu(T0 + i * NS_PER_S // 200, "imu", np.full(6, float(i), np.float32))
    samples, rate = windows._imu_window()
    assert rate == pytest.approx(200.0, rel=0.01)
    assert samples.shape == (400, 6)


def test_stamp_jitter_around_the_model_rate_is_not_resampled():
    windows = SensorWindows()
    jitter = np.random.default_rng(1).integers(-800_000, 800_000, size=200)  # +-0.8 ms
    for i in range(200):  # 100 Hz nominal, measured a little off it
        windows.add_imu(T0 + i * NS_PER_S // 100 + int(jitter[i]) + i * 5_000, "imu", np.full(6, 1.0, np.float32))
    assert windows._imu_window()[1] == 100.0
    windows.clear()
    for i in range(200):  # 95 Hz is a different rate
        windows.add_imu(T0 + i * NS_PER_S // 95, "imu", np.full(6, 1.0, np.float32))
    assert windows._imu_window()[1] == pytest.approx(95.0, rel=0.01)


def test_an_imu_gap_restarts_the_window_instead_of_resampling_across_it():
    windows = SensorWindows()
    for i in range(150):  # 1.5 s at 100 Hz, then a 1.2 s dropout, then 0.3 s more
        windows.add_imu(T0 + i * NS_PER_S // 100, "imu", np.zeros(6, np.float32))
    for i in range(30):
        windows.add_imu(T0 + (270 + i) * NS_PER_S // 100, "imu", np.zeros(6, np.float32))
    snapshot = windows.snapshot(("imu",), 0.5)
    assert snapshot.inputs == {} and "since the last gap" in snapshot.skipped["imu"]
    for i in range(100):  # once a contiguous second has arrived, the window is usable again
        windows.add_imu(T0 + (300 + i) * NS_PER_S // 100, "imu", np.zeros(6, np.float32))
    samples, rate = windows._imu_window()
    assert rate == pytest.approx(100.0, rel=0.01) and len(samples) == 130


def test_input_the_preprocessing_rejects_is_skipped_with_its_reason():
    windows = SensorWindows()
    _fill(windows)
    windows.add_image(T0 + 2 * NS_PER_S, "cam", np.full((28, 28), np.nan, np.float32))
    snapshot = windows.snapshot(("camera", "imu", "audio"), max_skew_s=0.5)
    assert set(snapshot.inputs) == {"imu", "audio"}
    assert "camera" in snapshot.skipped
