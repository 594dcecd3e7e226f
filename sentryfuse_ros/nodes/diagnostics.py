"""DiagnosticStatus for each sensor and the battery, in the form diagnostic_aggregator expects.

Levels (diagnostic_msgs): OK, WARN, ERROR, STALE. The rules live in `sensor_level` and
`battery_level`, plain functions of the state machines, so they are unit-tested without ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from sentryfuse_ros.nodes.battery import BatterySnapshot
from sentryfuse_ros.nodes.liveness import SensorLiveness
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES

OK, WARN, ERROR, STALE = 0, 1, 2, 3
NAME_PREFIX = "sentryfuse: "


@dataclass(frozen=True)
class SensorExpectation:
    expected_rate_hz: float
    # WARN while the measured rate is below this fraction of expected_rate_hz.
    min_rate_fraction: float = 0.5
    # WARN for this long after an invalid message.
    invalid_hold_s: float = 5.0


def sensor_level(tracker: SensorLiveness, now: float, expect: SensorExpectation) -> tuple[int, str]:
    """STALE: nothing received yet; ERROR: dead; WARN: alive but slow or recently sent bad data; else OK."""
    if not tracker.ever_received:
        return STALE, "no message received yet"
    if not tracker.alive:
        if tracker.valid_count == 0:
            return ERROR, f"only invalid messages; last: {tracker.last_invalid_reason}"
        recovering = f"; recovering {tracker.streak}/{tracker.config.recover_messages}" if tracker.streak else ""
        rejected = (f"; messages still arrive but are invalid: {tracker.last_invalid_reason}"
                    if tracker.last_invalid is not None and tracker.last_invalid > tracker.last_valid else "")
        return ERROR, (f"dead: no valid message for {tracker.age(now):.3f} s (timeout {tracker.config.timeout_s:g} s)"
                       f"{rejected}{recovering}")
    rate = tracker.rate_hz(now)
    if rate < expect.min_rate_fraction * expect.expected_rate_hz:
        return WARN, f"rate {rate:.1f} Hz below {expect.min_rate_fraction:.0%} of expected {expect.expected_rate_hz:g} Hz"
    if tracker.last_invalid is not None and now - tracker.last_invalid < expect.invalid_hold_s:
        return WARN, f"invalid message: {tracker.last_invalid_reason}"
    return OK, "alive"


def battery_level(snapshot: BatterySnapshot, power_level: int) -> tuple[int, str]:
    """STALE: nothing received; WARN: stale, corrected/ignored reading or low; ERROR: critical; else OK."""
    if not snapshot.received:
        return STALE, "no battery message received yet"
    level_name = LEVEL_NAMES[power_level]
    if snapshot.stale:
        return WARN, f"stale: no usable reading for {snapshot.age_s:.1f} s; power level {level_name}"
    if snapshot.warning:
        return WARN, f"{snapshot.warning}; power level {level_name}"
    state = f"{snapshot.percentage:.0%}, {'charging' if snapshot.charging else 'discharging'}, power level {level_name}"
    if level_name == "critical":
        return ERROR, state
    if level_name == "low":
        return WARN, state
    return OK, state


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.3f}"


def make_status(name: str, hardware_id: str, level: int, message: str, values: dict[str, object]) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=bytes([level]),
        name=NAME_PREFIX + name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=_number(v) if isinstance(v, float) else str(v)) for key, v in values.items()],
    )


def sensor_status(name: str, hardware_id: str, topic: str, tracker: SensorLiveness, now: float,
                  expect: SensorExpectation, qos_problem: str = "") -> DiagnosticStatus:
    level, message = sensor_level(tracker, now, expect)
    if qos_problem and not tracker.alive:
        message = f"{message}; {qos_problem}"
    return make_status(name, hardware_id, level, message, {
        "topic": topic,
        "alive": tracker.alive,
        "rate_hz": tracker.rate_hz(now),
        "expected_rate_hz": float(expect.expected_rate_hz),
        "age_s": tracker.age(now),
        "timeout_s": float(tracker.config.timeout_s),
        "valid_messages": tracker.valid_count,
        "invalid_messages": tracker.invalid_count,
        "last_invalid_reason": tracker.last_invalid_reason,
        "dropouts": tracker.dropouts,
        "qos_problem": qos_problem,
    })


def battery_status(hardware_id: str, topic: str, snapshot: BatterySnapshot, power_level: int,
                   pruning_budget: float, ignored: int) -> DiagnosticStatus:
    level, message = battery_level(snapshot, power_level)
    return make_status("battery", hardware_id, level, message, {
        "topic": topic,
        "percentage": snapshot.percentage,
        "charging": snapshot.charging,
        "age_s": snapshot.age_s,
        "power_level": LEVEL_NAMES[power_level],
        "pruning_budget": float(pruning_budget),
        "ignored_readings": ignored,
        "last_warning": snapshot.warning,
    })
