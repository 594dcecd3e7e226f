"""offload_link: the robot's side of offload without ROS. Every time is an explicit `now` (seconds):
nothing sleeps."""

from __future__ import annotations

import pytest

from sentryfuse_ros.nodes.offload_link import LINK_STATES, OffloadConfig, OffloadLink

TASK = "0123456789abcdef"
OTHER = "fedcba9876543210"
CONFIG = OffloadConfig(confidence_threshold=0.8, deadline_s=0.25, link_timeout_s=0.5)


def link(**changes) -> OffloadLink:
    config = OffloadConfig(**{**CONFIG.__dict__, **changes})
    return OffloadLink(config, TASK)


def up_link(at: float = 100.0) -> OffloadLink:
    result = link()
    result.heard(at, TASK)
    assert result.up(at)
    return result


class Local:
    """Stands for what inference_node keeps of a local prediction (compared by identity)."""


# --- the link --------------------------------------------------------------------------------
def test_config_from_parameter_values():
    values = {"offload.confidence_threshold": 0.6, "offload.deadline_s": 0.1, "offload.link_timeout_s": 0.3,
              "offload.encoding": "int8"}
    assert OffloadConfig.from_values(values) == OffloadConfig(0.6, 0.1, 0.3, "int8")


def test_never_heard_before_any_heartbeat():
    offload = link()
    assert offload.state(0.0) == offload.state(1e6) == "never heard"
    assert offload.poll(5.0) == "never heard" and not offload.up(5.0)
    assert offload.transitions == [] and offload.in_flight() == 0
    assert "never heard" in LINK_STATES


def test_own_task_heartbeat_brings_the_link_up_and_records_it():
    offload = link()
    offload.heard(10.0, TASK)
    assert offload.state(10.0) == "up" and offload.up(10.1)
    assert offload.transitions == [(10.0, "up")]
    offload.heard(10.2, TASK)  # staying up records nothing
    assert offload.transitions == [(10.0, "up")]


def test_another_tasks_heartbeat_is_not_a_link():
    offload = link()
    offload.heard(10.0, OTHER)
    assert offload.state(10.0) == "another task"
    assert not offload.up(10.0)
    assert offload.transitions == []  # never was up
    assert offload.wants(10.0, allowed=True, confidence=0.1) is False
    assert offload.counts["link not up, kept local"] == 1
    # Silent long enough, it is down whoever sent the last heartbeat.
    assert offload.state(10.6) == "down"


def test_link_is_down_exactly_after_link_timeout():
    offload = link(link_timeout_s=0.5)
    offload.heard(100.0, TASK)
    assert offload.state(100.5) == "up"  # 0.5 s since the last heartbeat: still within the timeout
    assert offload.state(100.5 + 1e-9) == "down"
    assert offload.poll(100.5) == "up"
    assert offload.poll(100.501) == "down"
    assert offload.transitions == [(100.0, "up"), (100.501, "down")]


def test_each_heartbeat_restarts_the_timeout():
    offload = link(link_timeout_s=0.5)
    for beat in range(10):
        offload.heard(100.0 + 0.4 * beat, TASK)
        assert offload.up(100.0 + 0.4 * beat + 0.45)
    assert offload.transitions == [(100.0, "up")]


def test_link_comes_back_up_with_the_next_heartbeat():
    offload = up_link(100.0)
    assert offload.poll(101.0) == "down"
    assert not offload.up(105.0)
    offload.heard(106.0, TASK)
    assert offload.state(106.0) == "up" and offload.wants(106.0, allowed=True, confidence=0.1)
    assert offload.transitions == [(100.0, "up"), (101.0, "down"), (106.0, "up")]


def test_switch_to_another_task_counts_as_link_lost_and_drops_what_is_in_flight():
    offload = up_link(100.0)
    offload.sent(100.1, (1, "cam"), Local())
    offload.heard(100.2, OTHER)
    assert offload.state(100.2) == "another task"
    assert offload.transitions[-1] == (100.2, "another task")
    assert offload.in_flight() == 0 and offload.counts["expired"] == 1
    assert offload.answered(100.25, (1, "cam")) is None
    assert offload.counts["late"] == 1


def test_transitions_list_is_bounded_and_keeps_the_newest():
    offload = link(link_timeout_s=0.5)
    for cycle in range(50):
        offload.heard(cycle * 10.0, TASK)
        offload.poll(cycle * 10.0 + 1.0)
    assert 0 < len(offload.transitions) <= 20
    assert offload.transitions[-2:] == [(490.0, "up"), (491.0, "down")]
    times = [t for t, _ in offload.transitions]
    assert times == sorted(times)


# --- what to send ----------------------------------------------------------------------------
def test_wants_sends_unconfident_predictions_while_up():
    offload = up_link(100.0)
    assert offload.wants(100.1, allowed=True, confidence=0.3) is True
    assert offload.wants(100.1, allowed=True, confidence=0.79) is True
    assert not any(offload.counts.values())  # nothing counted as kept local


def test_wants_false_when_the_level_does_not_allow_offload_without_counting():
    offload = up_link(100.0)
    assert offload.wants(100.1, allowed=False, confidence=0.1) is False
    assert not any(offload.counts.values())


@pytest.mark.parametrize("confidence", [0.8, 0.95, 1.0])
def test_wants_false_when_confident(confidence):
    offload = up_link(100.0)
    assert offload.wants(100.1, allowed=True, confidence=confidence) is False  # threshold itself is confident
    assert offload.counts["confident, kept local"] == 1
    assert offload.counts["link not up, kept local"] == 0


def test_threshold_one_sends_every_prediction():
    offload = link(confidence_threshold=1.0)
    offload.heard(0.0, TASK)
    assert offload.wants(0.1, allowed=True, confidence=0.999999)


@pytest.mark.parametrize("heard", [None, "down"], ids=["never heard", "down"])
def test_wants_false_when_the_link_is_not_up(heard):
    offload = link()
    if heard == "down":
        offload.heard(100.0, TASK)
    assert offload.wants(101.0, allowed=True, confidence=0.1) is False
    assert offload.counts["link not up, kept local"] == 1
    assert offload.counts["confident, kept local"] == 0
    # Confident predictions are counted as such even with the link down (the reason that decided).
    assert offload.wants(101.0, allowed=True, confidence=0.9) is False
    assert offload.counts["confident, kept local"] == 1 and offload.counts["link not up, kept local"] == 1


def test_wants_notices_the_link_loss_itself():
    offload = up_link(100.0)
    offload.sent(100.1, (1, "cam"), Local())
    assert offload.wants(100.7, allowed=True, confidence=0.1) is False
    assert offload.transitions[-1] == (100.7, "down")
    assert offload.in_flight() == 0 and offload.counts["expired"] == 1


# --- requests and answers --------------------------------------------------------------------
def test_answer_within_the_deadline_returns_the_local_and_records_the_round_trip():
    offload = up_link(100.0)
    local = Local()
    offload.sent(100.0, (5, "cam"), local)
    assert offload.counts["sent"] == 1 and offload.in_flight() == 1
    assert offload.answered(100.1, (5, "cam")) is local
    assert offload.counts["answered"] == 1 and offload.in_flight() == 0
    assert offload.round_trips_ms == [pytest.approx(100.0)]
    # A second answer for the same request is not awaited any more.
    assert offload.answered(100.11, (5, "cam")) is None
    assert offload.counts["answer not awaited"] == 1 and offload.counts["answered"] == 1


def test_answer_exactly_at_the_deadline_still_counts():
    offload = up_link(1.0)
    local = Local()
    offload.sent(1.0, (1, "cam"), local)
    assert offload.answered(1.25, (1, "cam")) is local


def test_late_answer_without_expire_is_dropped_and_counted():
    offload = up_link(100.0)
    offload.sent(100.0, (7, "imu"), Local())
    assert offload.answered(100.3, (7, "imu")) is None
    assert offload.counts["late"] == 1 and offload.counts["answered"] == 0
    assert offload.round_trips_ms == [] and offload.in_flight() == 0


def test_late_answer_after_expire_is_dropped_and_counted_late():
    offload = up_link(100.0)
    offload.sent(100.0, (7, "imu"), Local())
    offload.sent(100.2, (8, "imu"), Local())
    offload.expire(100.3)  # only the first is past its deadline
    assert offload.counts["expired"] == 1 and offload.in_flight() == 1
    assert offload.answered(100.31, (7, "imu")) is None
    assert offload.counts["late"] == 1 and offload.counts["answer not awaited"] == 0
    assert offload.answered(100.32, (8, "imu")) is not None  # the other is still in time
    # A repeat of the late answer is no longer remembered as late.
    assert offload.answered(100.33, (7, "imu")) is None
    assert offload.counts["late"] == 1 and offload.counts["answer not awaited"] == 1


def test_answer_never_asked_for_is_not_awaited():
    offload = up_link(100.0)
    offload.sent(100.0, (1, "cam"), Local())
    assert offload.answered(100.1, (1, "other frame")) is None
    assert offload.answered(100.1, (2, "cam")) is None
    assert offload.counts["answer not awaited"] == 2 and offload.counts["late"] == 0
    assert offload.in_flight() == 1  # the real request is still awaited


def test_newer_local_prediction_supersedes_requests_in_flight():
    offload = up_link(100.0)
    offload.sent(100.0, (1, "cam"), Local())
    offload.published_local(100.05)
    assert offload.in_flight() == 0 and offload.counts["newer local prediction"] == 1
    assert offload.answered(100.06, (1, "cam")) is None  # in time, but a newer local one stands
    assert offload.counts["late"] == 1


def test_link_loss_drops_requests_in_flight_and_records_the_transition():
    offload = up_link(100.0)
    keys = [(1, "cam"), (2, "cam"), (3, "imu")]
    for key in keys:
        offload.sent(100.1, key, Local())
    assert offload.poll(100.45) == "up" and offload.in_flight() == 3  # polling while up expires nothing
    assert offload.poll(100.6) == "down"
    assert offload.in_flight() == 0 and offload.counts["expired"] == 3
    assert offload.transitions == [(100.0, "up"), (100.6, "down")]
    # Their answers, if they come at all, are late.
    for key in keys:
        assert offload.answered(100.61, key) is None
    assert offload.counts["late"] == 3
    # Up again: new requests are awaited normally.
    offload.heard(101.0, TASK)
    local = Local()
    offload.sent(101.0, (4, "cam"), local)
    assert offload.answered(101.1, (4, "cam")) is local


def test_memory_of_expired_requests_is_bounded():
    offload = link(deadline_s=0.25, link_timeout_s=1e9)
    offload.heard(0.0, TASK)
    for index in range(150):
        offload.sent(float(index), (index, "cam"), Local())
        offload.expire(index + 0.3)
    assert offload.counts["expired"] == 150 and offload.in_flight() == 0
    assert offload.answered(200.0, (149, "cam")) is None and offload.counts["late"] == 1
    assert offload.answered(200.0, (0, "cam")) is None  # forgotten long ago
    assert offload.counts["answer not awaited"] == 1


def test_round_trips_are_bounded_newest_last():
    offload = link(link_timeout_s=1e9)
    offload.heard(0.0, TASK)
    for index in range(250):
        offload.sent(float(index), (index, "cam"), Local())
        offload.answered(index + index % 10 / 100, (index, "cam"))
    assert offload.counts["answered"] == 250
    assert len(offload.round_trips_ms) == 200
    assert offload.round_trips_ms[-1] == pytest.approx(90.0)


def test_an_answer_keeps_the_link_up_like_a_heartbeat():
    offload = up_link(100.0)
    offload.sent(100.4, (1, "camera"), Local())
    offload.answered(100.45, (1, "camera"))
    assert offload.state(100.9) == "up"  # 0.9 s after the heartbeat, 0.45 s after the answer
    assert offload.state(100.96) == "down"


def test_an_answer_does_not_make_a_base_station_of_another_task_usable():
    offload = link()
    offload.heard(100.0, OTHER)
    offload.answered(100.3, (1, "camera"))
    assert offload.state(100.4) == "another task"
    assert offload.state(100.7) == "down"  # the answer did not refresh it
