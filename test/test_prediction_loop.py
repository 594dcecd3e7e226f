"""inference_node's per-tick decisions without ROS (nodes/prediction_loop.py), and the offline stream
replay that drives them with sensor_sim's messages (bench/stream_replay.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sentryfuse_ros.bench.stream_replay import SAMPLE_PERIOD_S, sim_messages
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes import encode
from sentryfuse_ros.nodes.offline_loop import replay
from sentryfuse_ros.nodes.power_policy import LevelPolicy
from sentryfuse_ros.nodes.prediction_loop import LoopConfig, PredictionLoop
from sentryfuse_ros.nodes.sim_sources import SyntheticSource
from sentryfuse_ros.nodes.stamps import ns_to_stamp

RATE = LevelPolicy(0.0, 10.0, "rate", ())
CHANGE = LevelPolicy(0.0, 10.0, "change", ())
S = 1_000_000_000


def _loop(**config):
    rejected = []
    loop = PredictionLoop(LoopConfig(**config), lambda name, reason: rejected.append((name, reason)))
    return loop, rejected


def _frame(value: int, t: float):
    return encode.image_to_msg(np.full((28, 28), value, np.uint8), ns_to_stamp(int((100 + t) * S)), "cam", "mono8")


def _feed_imu_and_audio(loop, start: float, seconds: float):
    """IMU at 100 Hz and 50 ms audio chunks over [start, start + seconds)."""
    stamps = (np.arange(int(seconds * 100)) / 100 + start + 100) * S
    rows = np.tile(np.array([0.1, 0.0, 9.8, 0.0, 0.0, 0.2], np.float32), (len(stamps), 1))
    loop.add_imu(stamps.astype(np.int64), "imu", rows)
    for k in range(int(seconds / 0.05)):
        loop.add_audio(int((start + 100 + 0.05 * k) * S), "mic", np.full(800, 0.01, np.float32), 16000)


def test_a_new_scene_empties_the_imu_and_audio_windows_so_the_camera_alone_predicts():
    loop, _ = _loop()
    _feed_imu_and_audio(loop, 0.0, 2.0)
    loop.offer_frame(_frame(10, 2.0))
    assert loop.trigger(2.0, MODALITIES, RATE) == "rate"
    assert tuple(loop.snapshot(MODALITIES).inputs) == ("camera",)  # first frame: a new scene
    loop.predicted(("camera",))
    _feed_imu_and_audio(loop, 2.0, 1.2)
    loop.offer_frame(_frame(10, 3.2))  # the same scene: the windows keep filling
    loop.trigger(3.2, MODALITIES, RATE)
    assert tuple(loop.snapshot(MODALITIES).inputs) == MODALITIES
    loop.predicted(MODALITIES)
    loop.offer_frame(_frame(200, 3.3))  # a new scene
    loop.trigger(3.3, MODALITIES, RATE)
    assert tuple(loop.snapshot(MODALITIES).inputs) == ("camera",)


def test_without_segmenting_the_windows_survive_a_new_scene():
    loop, _ = _loop(segment=False)
    _feed_imu_and_audio(loop, 0.0, 2.0)
    loop.offer_frame(_frame(10, 2.0))
    loop.trigger(2.0, MODALITIES, RATE)
    assert tuple(loop.snapshot(MODALITIES).inputs) == MODALITIES


def test_the_change_trigger_predicts_on_a_scene_then_follows_up_then_waits():
    loop, _ = _loop(follow_up_s=0.6)
    reasons = []
    for tick in range(40):  # 4 s at 10 Hz, one scene change at 2 s
        now = 0.05 + tick / 10
        _feed_imu_and_audio(loop, now - 0.1, 0.1)
        loop.offer_frame(_frame(10 if now < 2.0 else 200, now))
        why = loop.trigger(now, MODALITIES, CHANGE)
        if why is not None:
            snapshot = loop.snapshot(MODALITIES)
            loop.predicted(tuple(snapshot.inputs))
            reasons.append((round(now, 2), why.split(" ")[0]))
    scenes = [t for t, why in reasons if why.startswith("camera")]
    assert scenes == [0.05, 2.05]
    follow_ups = [t for t, why in reasons if why == "follow-up"]
    assert follow_ups == [0.65, 1.25, 1.85, 2.65, 3.25, 3.85]  # every 0.6 s for 2 s after each scene
    assert len(reasons) <= 10  # against 40 rate-triggered


def test_follow_ups_end_two_seconds_into_a_static_scene():
    loop, _ = _loop(follow_up_s=0.6)
    fired = []
    for tick in range(60):
        now = 0.05 + tick / 10
        loop.offer_frame(_frame(10, now))
        if loop.trigger(now, ("camera",), CHANGE):
            loop.predicted(("camera",))
            fired.append(round(now, 2))
    assert fired == [0.05, 0.65, 1.25, 1.85]


def test_the_change_trigger_stays_quiet_on_a_static_scene_without_follow_ups():
    loop, _ = _loop(follow_up_s=0.0)
    fired = []
    for tick in range(50):
        now = 0.05 + tick / 10
        _feed_imu_and_audio(loop, now - 0.1, 0.1)
        loop.offer_frame(_frame(10, now))
        if loop.trigger(now, MODALITIES, CHANGE):
            loop.predicted(tuple(loop.snapshot(MODALITIES).inputs))
            fired.append(now)
    assert fired == [0.05]  # the first frame, then nothing: the scene never changes


def test_without_a_camera_an_audio_onset_stands_in_for_a_new_scene():
    loop, _ = _loop(follow_up_s=0.0)
    loop.watch_change(True)
    wanted = ("imu", "audio")
    _feed_imu_and_audio(loop, 0.0, 1.5)
    assert loop.trigger(1.5, wanted, CHANGE).startswith("plan")
    loop.predicted(tuple(loop.snapshot(wanted).inputs))
    _feed_imu_and_audio(loop, 1.5, 0.5)
    assert loop.trigger(2.0, wanted, CHANGE) is None
    for k in range(6):  # loud speech
        loop.add_audio(int((102.0 + 0.05 * k) * S), "mic", np.full(800, 0.5, np.float32), 16000)
    assert loop.trigger(2.3, wanted, CHANGE).startswith("audio")


def test_a_frame_that_does_not_decode_is_rejected_not_raised():
    loop, rejected = _loop()
    bad = _frame(10, 0.0)
    bad.step = 3  # smaller than the row
    loop.offer_frame(bad)
    assert loop.trigger(0.1, ("camera",), RATE) == "rate"
    assert loop.snapshot(("camera",)).inputs == {}
    assert rejected and rejected[0][0] == "camera" and "step" in rejected[0][1]


def test_the_replayed_streams_are_what_sensor_sim_publishes():
    source = SyntheticSource(3)
    messages = sim_messages(source, [0, 1, 2])
    counts = {name: sum(1 for _, sensor, _ in messages if sensor == name) for name in MODALITIES}
    assert counts == {"camera": 90, "imu": 600, "audio": 120}
    times = [t for t, _, _ in messages]
    assert times == sorted(times)
    # The second sample's frame is its own image from its first frame on.
    second = [msg for t, sensor, msg in messages if sensor == "camera" and SAMPLE_PERIOD_S <= t < 2 * SAMPLE_PERIOD_S]
    assert bytes(second[0].data) == encode.camera_frame(source.sample(1).image).tobytes()


@pytest.mark.parametrize("trigger, most", [("rate", 20.0), ("change", 8.0)])
def test_a_replay_predicts_per_sample_as_its_trigger_says(trigger, most):
    source = SyntheticSource(4)
    result = replay(sim_messages(source, [0, 1, 2, 3]), 4 * SAMPLE_PERIOD_S, 10.0, trigger, "")
    per_sample = len(result.used) / 4
    assert 1.0 <= per_sample <= most
    assert result.ticks == 80
    assert all(set(used) <= set(MODALITIES) for used in result.used)
    if trigger == "change":
        assert sum(why.startswith("camera") for why in result.triggers) == 4  # one new scene per sample


def test_a_follow_up_lands_on_the_nearest_tick_even_when_the_timer_runs_a_little_early():
    loop, _ = _loop(follow_up_s=0.6)
    level = LevelPolicy(0.0, 5.0, "change", ())
    fired = []
    for tick in range(10):  # 5 Hz ticks, each 1 ms early
        now = 0.05 + tick * 0.2 - 0.001 * tick
        loop.offer_frame(_frame(10, now))
        if loop.trigger(now, ("camera",), level):
            loop.predicted(tuple(loop.snapshot(("camera",)).inputs))
            fired.append(tick)
    assert fired == [0, 3, 6, 9]
