"""The inference node's sensor windows: bounded, stamp-aligned, and honest about what they skip."""

import gc
import os
import sys
from collections import deque

import numpy as np
import pytest
import torch

from sentryfuse_ros.data.preprocess import audio_tensor, image_tensor, imu_tensor
from sentryfuse_ros.data.ring_buffer import SlidingBuffer
from sentryfuse_ros.nodes import sensor_windows
from sentryfuse_ros.nodes.sensor_windows import (
    IMU_BUFFER_FACTOR,
    IMU_GAP_INTERVALS,
    IMU_MIN_GAP_S,
    IMU_RATE_JITTER,
    NS_PER_S,
    SensorWindows,
)

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
    assert len(windows._imu_stamps) == len(windows._imu_samples) == IMU_BUFFER_FACTOR * 200
    assert windows._audio.covered_s == 1.0
    windows.add_audio(T0 + 30 * NS_PER_S, "mic", np.zeros(400, np.float32), 8000)
    assert windows._audio.sample_rate == 8000 and windows._audio.covered_s == 0.05
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


# ----------------------------------------------------------------------------- buffers


def test_sliding_buffer_keeps_the_newest_rows_across_moves_to_the_front():
    buffer, written = SlidingBuffer(5, (2,), np.int64), []
    rng = np.random.default_rng(3)
    for step in range(200):
        rows = np.arange(len(written), len(written) + int(rng.integers(0, 8))).repeat(2).reshape(-1, 2)
        if step % 3:
            buffer.extend(rows)
        else:
            for row in rows:
                buffer.append(row)
        written.extend(rows.tolist())
        np.testing.assert_array_equal(buffer.view(), np.array(written[-5:], np.int64).reshape(-1, 2))
    assert buffer.nbytes == 2 * 5 * 2 * 8
    zeros = SlidingBuffer(4, zero_filled=True)
    zeros.extend(np.ones(3, np.float32))
    np.testing.assert_array_equal(zeros.view(), [0, 1, 1, 1])


def _resident_bytes():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_bounded_over_a_hundred_thousand_messages_per_sensor():
    windows, chunk, image = SensorWindows(), np.full(800, 0.1, np.float32), np.zeros((28, 28), np.float32)

    def stream(first, count):
        for i in range(first, first + count):
            stamp = T0 + i * NS_PER_S // 100
            windows.add_imu(stamp, "imu", np.full(6, 0.1, np.float32))
            windows.add_audio(stamp, "mic", chunk, 16000)  # 800 samples per 10 ms: stamps need not add up
            windows.add_image(stamp, "cam", image)
            if i % 100 == 0 and i >= 200:  # from when the IMU window is filled
                assert set(windows.snapshot(("camera", "imu", "audio"), 10.0).inputs) == {"camera", "imu", "audio"}

    stream(0, 10_000)
    gc.collect()
    blocks, rss = sys.getallocatedblocks(), _resident_bytes()
    stream(10_000, 90_000)
    gc.collect()
    # Python objects and resident memory: a leak of one object or one chunk per message would
    # show as 10^5 blocks or hundreds of MB.
    assert sys.getallocatedblocks() - blocks < 1_000
    assert _resident_bytes() - rss < 4 * 2**20
    assert len(windows._imu_stamps) == IMU_BUFFER_FACTOR * 200


# ----------------------------------------------------------------------------- IMU


class DequeImuReference:
    """The IMU window as SensorWindows built it from a deque of (stamp, sample) rows, before the
    ring buffers: the reference the vectorised version must reproduce."""

    def __init__(self):
        self.rows = deque(maxlen=IMU_BUFFER_FACTOR * 200)

    def window(self):
        newest = self.rows[-1][0]
        start = newest - int(2.0 * NS_PER_S)
        stamped = [(stamp, sample) for stamp, sample in self.rows if stamp > start]
        if len(stamped) >= 3:
            intervals = np.diff([stamp for stamp, _ in stamped])
            gap_ns = max(IMU_GAP_INTERVALS * float(np.median(intervals)), IMU_MIN_GAP_S * NS_PER_S)
            gaps = np.nonzero(intervals > gap_ns)[0]
            stamped = stamped[gaps[-1] + 1 :] if gaps.size else stamped
        span_s = (stamped[-1][0] - stamped[0][0]) / NS_PER_S
        rate_hz = (len(stamped) - 1) / span_s if span_s > 0 and len(stamped) > 1 else 100.0
        if abs(rate_hz / 100.0 - 1.0) <= IMU_RATE_JITTER:
            rate_hz = 100.0
        return np.stack([sample for _, sample in stamped]), rate_hz, stamped[-1][0] - stamped[0][0]


def _imu_stream(rng, seconds_per_segment=3.0):
    """Stamps and samples at changing rates, with jitter and dropouts."""
    stamps, t = [], T0
    for rate in (100.0, 200.0, 95.0, 400.0, 100.0, 50.0, 100.0, 99.0, 200.0) * 2:
        count = int(seconds_per_segment * rate)
        step = NS_PER_S / rate
        stamps.extend(t + (np.arange(count) * step + rng.integers(-200_000, 200_000, count)).astype(np.int64))
        t = stamps[-1] + int(step) + (int(rng.choice([0, 80_000_000, 1_500_000_000])))
    stamps = np.maximum.accumulate(np.asarray(stamps, np.int64))
    return stamps, rng.standard_normal((len(stamps), 6)).astype(np.float32)


def test_imu_ring_buffers_give_the_deque_versions_windows_through_many_wrap_arounds():
    rng = np.random.default_rng(4)
    stamps, samples = _imu_stream(rng)
    windows, reference, index, checks = SensorWindows(), DequeImuReference(), 0, 0
    while index < len(stamps):
        batch = int(rng.choice([1, 2, 3, 17, 60, 1000], p=[0.4, 0.2, 0.15, 0.15, 0.08, 0.02]))
        if batch == 1:
            windows.add_imu(int(stamps[index]), "imu", samples[index])
        else:
            windows.add_imu_many(stamps[index : index + batch], "imu", samples[index : index + batch])
        for i in range(index, min(index + batch, len(stamps))):
            reference.rows.append((int(stamps[i]), samples[i]))
        index += batch
        want_samples, want_rate, want_span = reference.window()
        got_samples, got_rate = windows._imu_window()
        np.testing.assert_array_equal(got_samples, want_samples)
        assert got_rate == want_rate
        assert windows.newest_stamp_ns("imu") == reference.rows[-1][0]
        snapshot = windows.snapshot(("imu",), 0.5)
        if want_span >= 1.0 * NS_PER_S:
            assert torch.equal(snapshot.inputs["imu"][0], imu_tensor(want_samples, want_rate))
            checks += 1
        else:
            assert "since the last gap" in snapshot.skipped["imu"]
    assert checks > 100 and len(stamps) > 10 * IMU_BUFFER_FACTOR * 200  # the buffers moved many times


def test_add_imu_many_equals_one_add_imu_per_message():
    rng = np.random.default_rng(5)
    stamps, samples = _imu_stream(rng, seconds_per_segment=1.5)
    one_by_one, batched, index = SensorWindows(), SensorWindows(), 0
    for stamp, sample in zip(stamps, samples):
        one_by_one.add_imu(int(stamp), "imu", sample)
    for size in [0, 1, 5, 3000, *rng.integers(0, 300, 100)]:
        batched.add_imu_many(stamps[index : index + size], "imu", samples[index : index + size])
        index += size
    assert index >= len(stamps)
    np.testing.assert_array_equal(batched._imu_stamps.view(), one_by_one._imu_stamps.view())
    np.testing.assert_array_equal(batched._imu_samples.view(), one_by_one._imu_samples.view())
    a, b = one_by_one.snapshot(("imu",), 0.5), batched.snapshot(("imu",), 0.5)
    assert (a.stamp_ns, a.frame_id, a.skipped) == (b.stamp_ns, b.frame_id, b.skipped)
    assert torch.equal(a.inputs["imu"], b.inputs["imu"])
    with pytest.raises(ValueError, match="samples"):
        batched.add_imu_many(stamps[:3], "imu", samples[:2])


# ----------------------------------------------------------------------------- camera


def test_a_camera_frame_is_preprocessed_once_however_many_snapshots_use_it(monkeypatch):
    calls = []
    monkeypatch.setattr(sensor_windows, "image_tensor", lambda image, **kw: calls.append(1) or image_tensor(image, **kw))
    windows = SensorWindows()
    _fill(windows)
    first = windows.snapshot(("camera",), 0.5).inputs["camera"]
    assert torch.equal(windows.snapshot(("camera",), 0.5).inputs["camera"], first) and len(calls) == 1
    windows.add_image(T0 + 3 * NS_PER_S, "cam", np.ones((28, 28), np.float32))
    assert not torch.equal(windows.snapshot(("camera",), 0.5).inputs["camera"], first) and len(calls) == 2
    windows.add_image(T0 + 4 * NS_PER_S, "cam", np.full((28, 28), 2.0, np.float32))
    reasons = {windows.snapshot(("camera",), 0.5).skipped["camera"] for _ in range(3)}
    assert len(calls) == 3 and len(reasons) == 1 and "[0, 1]" in reasons.pop()


# ----------------------------------------------------------------------------- audio


def _voice(seconds, rate, seed=6):
    """A tone sweeping through the mel bands, with noise: every band and frame carries signal."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * noise).astype(np.float32)


def _stream_audio(windows, audio, rate, chunk, every_s=0.1):
    """Feed `audio` in chunks of `chunk` samples; yield (samples so far, snapshot) about every `every_s`."""
    due = 0
    for start in range(0, len(audio), chunk):
        end = min(start + chunk, len(audio))
        windows.add_audio(T0 + start * NS_PER_S // rate, "mic", audio[start:end], rate)
        if end >= due:
            due = end + int(every_s * rate)
            yield end, windows.snapshot(("audio",), 0.5)


@pytest.mark.parametrize("chunk", [800, 160, 1, 7, 100, 333, 441, 1000, 1024, 17_000])
def test_incremental_audio_at_the_model_rate_equals_the_offline_log_mel_exactly(chunk):
    audio, windows, compared = _voice(2.5, 16000), SensorWindows(min_fill=0.0), 0
    for end, snapshot in _stream_audio(windows, audio, 16000, chunk, every_s=0.1 if chunk > 1 else 0.3):
        assert torch.equal(snapshot.inputs["audio"][0], audio_tensor(audio[:end][-16000:], 16000))
        compared += 1
    assert compared >= 3


def test_a_restarted_stream_equals_the_offline_log_mel_of_the_new_stream():
    windows, voice = SensorWindows(min_fill=0.0), _voice(1.5, 16000)
    for _ in _stream_audio(windows, _voice(1.2, 16000, seed=7), 16000, 800):
        pass
    for _ in _stream_audio(windows, _voice(0.7, 8000), 8000, 400):  # a new rate restarts the window
        pass
    for end, snapshot in _stream_audio(windows, voice, 16000, 1000):  # and so does the old rate again
        assert torch.equal(snapshot.inputs["audio"][0], audio_tensor(voice[:end], 16000))


@pytest.mark.parametrize("rate, chunk", [(8000, 400), (8000, 1024), (44100, 2205), (48000, 2400)])
def test_resampled_audio_on_the_offline_grid_equals_it_but_for_the_first_two_frames(rate, chunk):
    """The offline path resamples each window alone, seeing zeros before it where the stream has
    its real past: that reaches the first ~10 samples, i.e. frames 0 and 1. Later frames are the
    offline path's bit for bit when the window starts on the stream's output grid: for down == 1
    always, otherwise when the samples received are a multiple of `down`."""
    audio, windows, compared = _voice(2.5, rate), SensorWindows(), 0
    for end, snapshot in _stream_audio(windows, audio, rate, chunk):
        if end >= rate:
            got, offline = snapshot.inputs["audio"][0], audio_tensor(audio[:end][-rate:], rate)
            assert torch.equal(got[:, 2:], offline[:, 2:])
            assert (got[:, :2] - offline[:, :2]).abs().mean() < 0.1
            compared += 1
    assert compared >= 10


@pytest.mark.parametrize("rate, chunk", [(48000, 1024), (44100, 1000), (22050, 1102)])
def test_resampled_audio_off_the_offline_grid_is_close_in_the_interior(rate, chunk):
    """Off the grid the stream's samples sit a fraction of an input sample away from the offline
    window's: interior frames stay within a few hundredths, while the reflect-padded edge frames
    can move by up to ~2 normalised units (40 dB) in quiet bands."""
    audio, windows, interior, edges = _voice(2.5, rate), SensorWindows(), 0.0, 0.0
    for end, snapshot in _stream_audio(windows, audio, rate, chunk):
        if end >= rate:
            difference = (snapshot.inputs["audio"][0] - audio_tensor(audio[:end][-rate:], rate)).abs()
            interior, edges = max(interior, difference[:, 2:-2].max().item()), max(edges, difference.max().item())
    assert interior < 0.1 and edges < 3.0


def test_a_rejected_chunk_rejects_the_audio_until_it_leaves_the_window():
    audio, windows = _voice(3.0, 16000), SensorWindows()
    bad = audio.copy()
    bad[20_000:20_800] = np.nan
    reasons = {}
    for end, snapshot in _stream_audio(windows, bad, 16000, 800):
        reasons[end] = snapshot.skipped.get("audio")
        if "audio" in snapshot.inputs:
            assert torch.equal(snapshot.inputs["audio"][0], audio_tensor(bad[:end][-16000:], 16000))
    rejected = {end for end, reason in reasons.items() if reason and "NaN" in reason}
    assert rejected == {end for end in reasons if 20_000 < end <= 36_800}
    windows.add_audio(T0 + 4 * NS_PER_S, "mic", np.full(800, 20000.0, np.float32), 16000)
    assert "full scale" in windows.snapshot(("audio",), 0.5).skipped["audio"]
    windows.add_audio(T0 + 5 * NS_PER_S, "mic", np.zeros(8000, np.float32), 500)
    assert "minimum" in windows.snapshot(("audio",), 0.5).skipped["audio"]
