"""SensorLiveness and StampCheck: the monitor's per-sensor state machines, driven by a fake clock."""

import math

import pytest
from builtin_interfaces.msg import Time

from sentryfuse_ros.nodes.liveness import LivenessConfig, SensorLiveness
from sentryfuse_ros.nodes.stamps import NS_PER_S, StampCheck, StampLimits, ns_to_stamp, stamp_to_ns

PERIOD = 1 / 15


def _alive_tracker(timeout=0.15, recover=15):
    tracker = SensorLiveness(LivenessConfig(timeout, recover))
    for i in range(recover):
        tracker.on_valid(i * PERIOD)
    assert tracker.alive
    return tracker, (recover - 1) * PERIOD


def test_starts_dead_and_needs_recover_messages_in_a_row():
    tracker = SensorLiveness(LivenessConfig(timeout_s=0.15, recover_messages=5))
    changes = [tracker.on_valid(i * PERIOD) for i in range(5)]
    assert changes == [False, False, False, False, True]  # True: it came alive
    assert tracker.alive and tracker.valid_count == 5


def test_dies_at_timeout_and_counts_the_dropout():
    tracker, last = _alive_tracker(timeout=0.15)
    assert tracker.update(last + 0.149) is False and tracker.alive
    assert tracker.update(last + 0.150 + 1e-9) is True
    assert not tracker.alive and tracker.dropouts == 1
    assert tracker.update(last + 1.0) is False  # reported once


def test_invalid_messages_never_keep_a_sensor_alive():
    tracker, last = _alive_tracker(timeout=0.15)
    for k in range(1, 5):
        tracker.on_invalid(last + 0.03 * k, "bad step")
    assert tracker.alive  # an invalid message alone does not kill either
    assert tracker.update(last + 0.15 + 1e-9) is True
    assert tracker.invalid_count == 4 and tracker.last_invalid_reason == "bad step"


def test_an_invalid_message_restarts_the_recovery_count():
    tracker = SensorLiveness(LivenessConfig(timeout_s=0.15, recover_messages=5))
    t = 0.0
    for _ in range(4):
        tracker.on_valid(t)
        t += PERIOD
    tracker.on_invalid(t, "NaN")
    for _ in range(4):
        t += PERIOD
        tracker.on_valid(t)
    assert not tracker.alive
    tracker.on_valid(t + PERIOD)
    assert tracker.alive


def test_a_gap_longer_than_the_timeout_restarts_the_recovery_count():
    tracker = SensorLiveness(LivenessConfig(timeout_s=0.15, recover_messages=3))
    tracker.on_valid(0.0)
    tracker.on_valid(0.05)
    tracker.on_valid(0.30)  # 0.25 s after the previous one
    assert not tracker.alive and tracker.streak == 1


def test_only_update_declares_a_death():
    # The node judges (update) after handling waiting messages; a message handled late because
    # the monitor itself stalled must not count as a gap.
    tracker, last = _alive_tracker(timeout=0.15, recover=3)
    assert tracker.on_valid(last + 0.5) is False
    assert tracker.alive and tracker.dropouts == 0


def _flap(tracker, start, seconds, on_s, period_s, rate_hz=15.0, check_every=0.01):
    """Feed a stream that is on for on_s of every period_s; return alive flags sampled every check_every."""
    samples, next_msg, t = [], start, start
    while t < start + seconds:
        if t >= next_msg:
            if (next_msg - start) % period_s < on_s:
                tracker.on_valid(next_msg)
            next_msg += 1 / rate_hz
        tracker.update(t)
        samples.append(tracker.alive)
        t += check_every
    return samples


def _transitions(flags):
    return sum(a != b for a, b in zip(flags, flags[1:]))


@pytest.mark.parametrize("on_fraction", [0.3, 0.5, 0.8])
def test_a_sensor_flapping_at_1_hz_does_not_make_the_state_flap(on_fraction):
    tracker, last = _alive_tracker(timeout=0.15, recover=15)
    flags = _flap(tracker, last + PERIOD, seconds=20.0, on_s=on_fraction, period_s=1.0)
    assert _transitions(flags) == 1 and not flags[-1]  # it dies once and stays dead
    assert tracker.dropouts == 1


def test_a_slow_flap_still_gets_through_once_per_cycle():
    tracker, last = _alive_tracker(timeout=0.15, recover=15)
    flags = _flap(tracker, last + PERIOD, seconds=12.0, on_s=2.0, period_s=4.0)
    # Off at 2, 6, 10 s; back about 0.93 s (15 frames) into the ons at 4 and 8 s (12 s ends the run).
    assert _transitions(flags) == 5


def test_rate_and_age():
    tracker = SensorLiveness(LivenessConfig(timeout_s=0.15, recover_messages=1, rate_window_s=1.0))
    assert tracker.age(0.0) == math.inf and tracker.rate_hz(0.0) == 0.0
    for i in range(31):
        tracker.on_valid(i * PERIOD)
    now = 30 * PERIOD + 0.02
    assert tracker.rate_hz(now) == pytest.approx(15.0, rel=0.01)
    assert tracker.age(now) == pytest.approx(0.02)
    assert tracker.rate_hz(now + 5.0) == 0.0  # window empty after a long silence


@pytest.mark.parametrize("kwargs", [dict(timeout_s=0), dict(recover_messages=0), dict(rate_window_s=-1)])
def test_config_rejects_nonsense(kwargs):
    values = dict(timeout_s=0.1, recover_messages=1, rate_window_s=1.0) | kwargs
    with pytest.raises(ValueError):
        LivenessConfig(**values)


NOW = 1_700_000_000 * NS_PER_S


def test_stamp_conversions_round_trip():
    assert stamp_to_ns(ns_to_stamp(NOW + 123)) == NOW + 123
    assert ns_to_stamp(1_500_000_000) == Time(sec=1, nanosec=500_000_000)


def test_stamp_check_rejects_unset_future_old_and_backwards_stamps():
    check = StampCheck(StampLimits(future_tolerance_s=0.5, max_age_s=1.0))
    assert "unset" in check.problem(Time(), NOW)
    assert "future" in check.problem(ns_to_stamp(NOW + NS_PER_S), NOW)
    assert "old" in check.problem(ns_to_stamp(NOW - 2 * NS_PER_S), NOW)
    good = ns_to_stamp(NOW - NS_PER_S // 10)
    assert check.problem(good, NOW) is None
    check.accept(good)
    assert "back" in check.problem(ns_to_stamp(NOW - NS_PER_S // 5), NOW)
    assert check.problem(good, NOW) is None  # an equal stamp is not out of order


def test_a_rejected_future_stamp_does_not_poison_ordering():
    check = StampCheck(StampLimits(future_tolerance_s=0.5, max_age_s=1.0))
    future = ns_to_stamp(NOW + 60 * NS_PER_S)
    assert check.problem(future, NOW) is not None  # rejected, so never accepted
    assert check.problem(ns_to_stamp(NOW), NOW) is None


def test_zero_limits_disable_the_age_checks():
    check = StampCheck(StampLimits(future_tolerance_s=0.0, max_age_s=0.0))
    assert check.problem(ns_to_stamp(NOW + 3600 * NS_PER_S), NOW) is None
    assert check.problem(ns_to_stamp(NOW - 3600 * NS_PER_S), NOW) is None
