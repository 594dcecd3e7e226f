"""When heartbeat_monitor looks at its sensor queues (watch_schedule.next_look), on a simulated
clock: period 0 is the per-sensor rule, P > 0 looks at least P apart and never earlier, a dropout
is seen within timeout + P and never before the timeout, and no queue waits longer than the
queue depth was sized for."""

import math
import random

import pytest

from sentryfuse_ros.nodes import monitor_params
from sentryfuse_ros.nodes.liveness import LivenessConfig, SensorLiveness
from sentryfuse_ros.nodes.monitor_params import MonitorConfig
from sentryfuse_ros.nodes.watch_schedule import RECOVERY_POLL_S, Watch, longest_wait_s, next_look, sensor_due

TIMEOUTS = {"camera": 0.163, "imu": 0.05, "audio": 0.13}
RATES = {"camera": 15.0, "imu": 100.0, "audio": 20.0}
MIN_TIMER_S = 0.001  # heartbeat_monitor.MIN_WATCHDOG_S


def old_due(now, watches):
    """The rule before check periods: each sensor's watchdog, re-armed at every look (a due time
    already past: at once)."""
    return max(now, min(w.last_valid + w.timeout_s if w.alive else now + max(w.timeout_s, RECOVERY_POLL_S)
                        for w in watches))


def test_period_zero_is_the_per_sensor_rule():
    alive_imu = Watch(True, 10.0, 0.05)
    alive_camera = Watch(True, 9.95, 0.163)
    dead_audio = Watch(False, 8.0, 0.13)
    never_heard = Watch(False, None, 0.05)
    assert sensor_due(alive_imu, 10.01) == pytest.approx(10.05)
    assert sensor_due(dead_audio, 10.01) == pytest.approx(10.01 + RECOVERY_POLL_S)
    assert sensor_due(Watch(False, 8.0, 0.4), 10.0) == pytest.approx(10.4)  # a timeout longer than the poll
    assert sensor_due(never_heard, 10.01) == pytest.approx(10.01 + RECOVERY_POLL_S)
    watches = [alive_imu, alive_camera, dead_audio, never_heard]
    assert next_look(10.01, watches, 0.0) == pytest.approx(10.05)
    assert next_look(10.01, [dead_audio, never_heard], 0.0) == pytest.approx(10.26)
    rng = random.Random(1)
    for _ in range(500):  # identical to the old due times on random states
        now = rng.uniform(0, 100)
        watches = [Watch(rng.random() < 0.7, now - rng.uniform(0, 0.3), rng.choice(list(TIMEOUTS.values())))
                   for _ in range(3)]
        assert next_look(now, watches, 0.0) == pytest.approx(old_due(now, watches))


def test_a_period_makes_one_due_time_at_least_p_apart_never_earlier_than_period_zero():
    watches = [Watch(True, 10.0, 0.05), Watch(True, 9.99, 0.163), Watch(True, 9.98, 0.13)]
    assert next_look(10.0, watches, 0.5) == pytest.approx(10.5)  # all sensors at one look, P later
    assert next_look(10.0, watches, 0.25) == pytest.approx(10.25)
    # Dead sensors: polled at max(timeout, RECOVERY_POLL_S, P) after the last look.
    dead = [Watch(False, 5.0, 0.05), Watch(False, None, 0.4)]
    assert next_look(10.0, dead, 0.5) == pytest.approx(10.5)
    assert next_look(10.0, dead, 0.1) == pytest.approx(10.25)  # never before the recovery poll ...
    assert next_look(10.0, dead[1:], 0.1) == pytest.approx(10.4)  # ... nor before a timeout
    # A period shorter than every due time changes nothing.
    assert next_look(10.0, watches, 0.01) == pytest.approx(10.05)
    # Due already past (e.g. re-armed when the level goes back to full): at once (the node floors the timer).
    assert next_look(10.0, [Watch(True, 9.0, 0.05)], 0.0) == pytest.approx(10.0)
    rng = random.Random(2)
    for _ in range(500):
        now, period = rng.uniform(0, 100), rng.choice([0.0, 0.1, 0.25, 0.5, 2.0])
        watches = [Watch(rng.random() < 0.7, now - rng.uniform(0, 0.3), rng.uniform(0.02, 0.5)) for _ in range(3)]
        look = next_look(now, watches, period)
        assert look >= old_due(now, watches) - 1e-12  # never earlier than period 0
        assert look >= now + period - 1e-12  # at least P apart
        assert look - now <= max(longest_wait_s(w.timeout_s, period) for w in watches) + 1e-12


def simulate(period_s, timeouts, rates, stop_at, end, level_periods=None, jitter=0.0, seed=0):
    """The monitor's loop on a simulated clock: sensors stream at `rates` until `stop_at[s]`
    (never if absent), messages are handled at each look, judged at their arrival.

    level_periods: [(from_time, period)] to change the check period mid-run (re-armed at once).
    Returns (looks, deaths {sensor: time}, longest gap between two looks, last arrival per sensor).
    """
    rng = random.Random(seed)
    trackers = {s: SensorLiveness(LivenessConfig(timeouts[s], 2)) for s in timeouts}
    arrivals = {s: [] for s in timeouts}
    for sensor, rate in rates.items():
        t = rng.uniform(0, 1 / rate)
        while t < min(stop_at.get(sensor, end), end):
            arrivals[sensor].append(t)
            t += 1 / rate * (1 + rng.uniform(-jitter, jitter))
    taken = {s: 0 for s in timeouts}
    changes = sorted(level_periods or [])
    looks, deaths = [0.0], {}

    def watches():
        return [Watch(t.alive, t.last_valid, t.config.timeout_s) for t in trackers.values()]

    def period_at(t):
        return next((p for start, p in reversed(changes) if t >= start), period_s)

    now = 0.0
    while True:
        at = next_look(now, watches(), period_at(now))
        # A level change between two looks re-arms from the last look with the new period.
        change = next((start for start, _ in changes if now < start < at), None)
        if change is not None:
            at = max(change, next_look(now, watches(), period_at(change)))
        now = max(at, now + MIN_TIMER_S)
        if now >= end:
            break
        looks.append(now)
        for sensor, times in arrivals.items():
            while taken[sensor] < len(times) and times[taken[sensor]] <= now:
                trackers[sensor].on_valid(times[taken[sensor]])
                taken[sensor] += 1
            if trackers[sensor].update(now):
                deaths[sensor] = now
    gaps = max(b - a for a, b in zip(looks, looks[1:]))
    last = {s: max((t for t in arrivals[s] if t < stop_at.get(s, end)), default=None) for s in timeouts}
    return looks, deaths, gaps, last


@pytest.mark.parametrize("period", [0.0, 0.25, 0.5, 1.0])
def test_a_dropout_is_seen_within_timeout_plus_period_and_never_before_the_timeout(period):
    for seed in range(20):
        stop = {"imu": 3.0 + seed * 0.0137, "camera": 4.0 + seed * 0.031}
        looks, deaths, gaps, last = simulate(period, TIMEOUTS, RATES, stop, end=6.0, jitter=0.1, seed=seed)
        assert set(deaths) == {"imu", "camera"}, deaths  # audio streams on: never a false dropout
        for sensor in deaths:
            latency = deaths[sensor] - last[sensor]
            assert latency >= TIMEOUTS[sensor] - 1e-9
            if period == 0:
                # at its timeout (to the node's 1 ms minimum timer period, for float rounding)
                assert latency == pytest.approx(TIMEOUTS[sensor], abs=MIN_TIMER_S + 1e-9)
            else:
                assert latency < TIMEOUTS[sensor] + period + 1e-9
        assert gaps <= max(longest_wait_s(t, period) for t in TIMEOUTS.values()) + 1e-9


@pytest.mark.parametrize("period", [0.25, 0.5, 2.0])
def test_with_a_period_the_monitor_wakes_about_once_per_period(period):
    looks, _, _, _ = simulate(period, TIMEOUTS, RATES, {}, end=20.0, jitter=0.1)
    assert len(looks) == pytest.approx(20.0 / period, abs=1.5)
    zero, _, _, _ = simulate(0.0, TIMEOUTS, RATES, {}, end=20.0, jitter=0.1)
    assert len(zero) > 15 * 20  # period 0: about once per IMU timeout


def test_all_dead_sensors_are_polled_at_the_recovery_poll_or_the_period():
    for period, spacing in ((0.0, RECOVERY_POLL_S), (0.1, RECOVERY_POLL_S), (0.5, 0.5), (2.0, 2.0)):
        looks, _, _, _ = simulate(period, TIMEOUTS, {}, {}, end=10.0)
        gaps = [b - a for a, b in zip(looks, looks[1:])]
        assert all(g == pytest.approx(spacing) for g in gaps), (period, set(gaps))


def test_a_level_change_takes_effect_within_one_period_and_full_restores_the_timeouts_at_once():
    # Streaming at critical (0.5 s); at t=5 the level goes to full (0): the IMU stops at 5.2.
    changes = [(0.0, 0.5), (5.0, 0.0)]
    looks, deaths, _, last = simulate(0.5, TIMEOUTS, RATES, {"imu": 5.2}, end=7.0, level_periods=changes)
    assert deaths["imu"] - last["imu"] == pytest.approx(TIMEOUTS["imu"], abs=MIN_TIMER_S + 1e-9)  # full: at its timeout
    assert any(5.0 <= t <= 5.0 + TIMEOUTS["imu"] for t in looks)  # the short schedule at once
    # Down to critical at t=5: looks at least 0.5 s apart from the first look after the change.
    looks, deaths, _, last = simulate(0.0, TIMEOUTS, RATES, {"imu": 5.7}, end=8.0, level_periods=[(5.0, 0.5)])
    after = [t for t in looks if t >= 5.0]
    assert after[0] - 5.0 <= 0.5 + 1e-9
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(after, after[1:]))
    assert TIMEOUTS["imu"] <= deaths["imu"] - last["imu"] < TIMEOUTS["imu"] + 0.5


def values(**changes):
    v = {spec.name: spec.default for spec in monitor_params.PARAMS}
    v.update({k.replace("__", "."): x for k, x in changes.items()})
    return v


def test_queue_depths_cover_the_longest_wait_at_any_level():
    shipped = MonitorConfig.from_values(values())
    assert shipped.check_periods_s == (0.0, 0.0, 0.25, 0.5)
    for sensor, settings in shipped.sensors.items():
        wait = max(settings.liveness.timeout_s, RECOVERY_POLL_S, 0.5)
        assert settings.longest_wait_s == wait
        # twice the expected rate over the longest wait, twice over: nothing is overwritten unread
        assert settings.queue_depth >= 2 * RATES[sensor] * wait * 2
        assert settings.queue_depth == monitor_params.queue_depth(RATES[sensor], wait)
    assert shipped.sensors["imu"].queue_depth == 201
    without = MonitorConfig.from_values(values(power__check_periods_s=(0.0, 0.0, 0.0, 0.0)))
    assert without.sensors["imu"].queue_depth == 101  # as before check periods
    slow = MonitorConfig.from_values(values(power__check_periods_s=(0.0, 0.0, 0.0, 5.0)))
    assert slow.sensors["camera"].queue_depth == math.ceil(2 * 15 * 5 * 2) + 1
    assert slow.battery_queue_depth >= 2 * 1.0 * 5.0 * 2 and shipped.battery_queue_depth == 5


@pytest.mark.parametrize("bad, words", [
    ((0.0, 0.0, 0.25, 5.5), "<= 5"), ((0.0, -0.1, 0.25, 0.5), ">= 0"), ((0.0, 0.0, float("nan"), 0.5), "finite"),
    ((0.0, 0.0, float("inf"), 0.5), "finite"), ((0.0, 0.25, 0.5), "needs 4 values"),
])
def test_bad_check_periods_are_rejected_with_a_reason(bad, words):
    spec = next(s for s in monitor_params.PARAMS if s.name == "power.check_periods_s")
    assert words in spec.problem(bad)
    assert "timeout_s + P" in spec.description
    assert spec.problem((0.0, 0.0, 0.0, 5.0)) is None
