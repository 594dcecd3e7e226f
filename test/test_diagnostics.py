"""Diagnostic levels for sensors and the battery (the rules, without ROS)."""

import math

from diagnostic_msgs.msg import DiagnosticStatus

from sentryfuse_ros.nodes.battery import BatterySnapshot
from sentryfuse_ros.nodes.diagnostics import (
    ERROR, OK, STALE, WARN, SensorExpectation, battery_level, battery_status, sensor_level, sensor_status,
)
from sentryfuse_ros.nodes.liveness import LivenessConfig, SensorLiveness

EXPECT = SensorExpectation(expected_rate_hz=15.0, min_rate_fraction=0.5, invalid_hold_s=5.0)


def _alive(rate_hz=15.0, count=20):
    tracker = SensorLiveness(LivenessConfig(timeout_s=0.5, recover_messages=5))
    for i in range(count):
        tracker.on_valid(i / rate_hz)
    return tracker, (count - 1) / rate_hz


def test_sensor_levels():
    assert sensor_level(SensorLiveness(LivenessConfig(0.5, 5)), 0.0, EXPECT)[0] == STALE
    tracker, now = _alive()
    assert sensor_level(tracker, now, EXPECT) == (OK, "alive")
    tracker.on_invalid(now, "image step 27 is smaller than width")
    level, message = sensor_level(tracker, now + 0.01, EXPECT)
    assert level == WARN and "step 27" in message
    assert sensor_level(tracker, now + 0.02, SensorExpectation(15.0, 0.5, invalid_hold_s=0.0))[0] == OK
    tracker.update(now + 1.0)
    level, message = sensor_level(tracker, now + 1.0, EXPECT)
    assert level == ERROR and "dead" in message


def test_slow_sensor_warns():
    tracker, now = _alive(rate_hz=5.0)
    level, message = sensor_level(tracker, now, EXPECT)
    assert level == WARN and "below 50%" in message


def test_only_invalid_messages_is_an_error_with_the_reason():
    tracker = SensorLiveness(LivenessConfig(0.5, 5))
    tracker.on_invalid(0.0, "audio sample_rate 8000 Hz, expected 16000 Hz")
    level, message = sensor_level(tracker, 0.1, EXPECT)
    assert level == ERROR and "8000" in message


def test_a_dead_sensor_whose_messages_are_rejected_says_why_in_the_message():
    tracker = SensorLiveness(LivenessConfig(0.5, 5))
    for step in range(5):
        tracker.on_valid(step * 0.1)
    tracker.on_invalid(1.0, "audio sample_rate 44100 Hz, expected 16000 Hz")
    tracker.update(1.5)
    level, message = sensor_level(tracker, 1.6, EXPECT)
    assert level == ERROR and message.startswith("dead") and "44100" in message


def _battery(**kwargs):
    values = dict(percentage=0.8, charging=False, received=True, stale=False, age_s=0.5, warning="")
    return BatterySnapshot(**(values | kwargs))


def test_battery_levels():
    assert battery_level(_battery(received=False, percentage=math.nan), 1)[0] == STALE
    assert battery_level(_battery(), 0)[0] == OK
    assert battery_level(_battery(percentage=0.3), 2)[0] == WARN
    assert battery_level(_battery(percentage=0.05), 3)[0] == ERROR
    level, message = battery_level(_battery(stale=True, percentage=math.nan, age_s=7.0), 1)
    assert level == WARN and "stale" in message
    level, message = battery_level(_battery(warning="source reports 0..100 (latest 85); divided by 100"), 0)
    assert level == WARN and "0..100" in message


def test_statuses_are_well_formed_for_the_aggregator():
    tracker, now = _alive()
    status = sensor_status("camera", "camera_optical_frame", "/camera/image_raw", tracker, now, EXPECT)
    assert status.level == DiagnosticStatus.OK and status.name == "sentryfuse: camera"
    assert status.hardware_id == "camera_optical_frame"
    values = {kv.key: kv.value for kv in status.values}
    assert values["invalid_messages"] == "0" and float(values["rate_hz"]) > 14 and values["topic"] == "/camera/image_raw"
    battery = battery_status("battery", "/battery/state", _battery(percentage=math.nan, stale=True), 1, 0.2, 3)
    assert battery.level == DiagnosticStatus.WARN and battery.name == "sentryfuse: battery"
    assert {kv.key: kv.value for kv in battery.values}["percentage"] == "nan"
