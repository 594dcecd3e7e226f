"""The simulator's scripted faults, read from YAML (config/faults/*.yaml).

No rclpy. Times are seconds since sensor_sim was activated. Format:

    faults:
      - {fault: drop, sensor: camera, at: 10, duration: 3}        # sensor publishes nothing
      - {fault: flap, sensor: imu, at: 20, duration: 8, period: 1.0, duty: 0.5}
                                             # on for duty*period, off for the rest, repeatedly
      - {fault: malformed, sensor: camera, at: 30, kind: step_mismatch, count: 5}
                                             # `count` bad messages, one beside each regular one
      - {fault: battery_drain, at: 40, duration: 20, to: 0.1}    # linear ramp to `to` (0..1)
      - {fault: battery_jump, at: 65, to: 0.9}
      - {fault: battery_raw, at: 70, duration: 5, value: 85.0}   # publish `value` verbatim
                                             # (e.g. 85.0, .nan, -1.0) instead of the charge
      - {fault: battery_charging, at: 80, duration: 10}          # status CHARGING meanwhile

Sensors: camera, imu, audio, battery (battery only for drop and flap). Malformed kinds:
camera step_mismatch, size_mismatch, bad_encoding; imu nan, inf, no_accel; audio zero_rate,
empty, nan; any of the three stamp_backwards, stamp_future, stamp_zero. A battery event
overrides any earlier battery_drain still in progress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentryfuse_ros.nodes.malformed import BREAKERS

SENSORS = ("camera", "imu", "audio", "battery")
MALFORMED_KINDS = {sensor: tuple(kinds) for sensor, kinds in BREAKERS.items()}
# fault -> (required keys, optional keys with defaults)
FIELDS: dict[str, tuple[tuple[str, ...], dict]] = {
    "drop": (("sensor", "at", "duration"), {}),
    "flap": (("sensor", "at", "duration", "period"), {"duty": 0.5}),
    "malformed": (("sensor", "at", "kind"), {"count": 1}),
    "battery_drain": (("at", "duration", "to"), {}),
    "battery_jump": (("at", "to"), {}),
    "battery_raw": (("at", "duration", "value"), {}),
    "battery_charging": (("at", "duration"), {}),
}


class FaultScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Fault:
    fault: str
    at: float
    sensor: str = ""
    duration: float = 0.0
    period: float = 0.0
    duty: float = 0.5
    kind: str = ""
    count: int = 1
    to: float = math.nan
    value: float = math.nan

    @property
    def end(self) -> float:
        return self.at + self.duration

    def active(self, t: float) -> bool:
        return self.at <= t < self.end


def _parse_fault(index: int, entry) -> Fault:
    where = f"faults[{index}]"
    if not isinstance(entry, dict) or "fault" not in entry:
        raise FaultScheduleError(f"{where}: expected a mapping with a 'fault' key, got {entry!r}")
    name = entry["fault"]
    if name not in FIELDS:
        raise FaultScheduleError(f"{where}: unknown fault {name!r}; expected one of {sorted(FIELDS)}")
    required, optional = FIELDS[name]
    missing = [key for key in required if key not in entry]
    unknown = sorted(set(entry) - {"fault", *required, *optional})
    if missing or unknown:
        raise FaultScheduleError(f"{where} ({name}): missing {missing}, unknown {unknown}")
    values = {**optional, **{key: entry[key] for key in (*required, *optional) if key in entry}}
    try:
        for key in ("at", "duration", "period", "duty", "to", "value"):
            if key in values:
                values[key] = float(values[key])
        if "count" in values:
            values["count"] = int(values["count"])
    except (TypeError, ValueError) as error:
        raise FaultScheduleError(f"{where} ({name}): {error}") from None
    fault = Fault(fault=name, **values)
    problem = _problem(fault)
    if problem:
        raise FaultScheduleError(f"{where} ({name}): {problem}")
    return fault


def _problem(fault: Fault) -> str | None:
    if not (math.isfinite(fault.at) and fault.at >= 0):
        return f"at must be a time >= 0, got {fault.at}"
    if not (math.isfinite(fault.duration) and fault.duration >= 0):
        return f"duration must be >= 0, got {fault.duration}"
    if fault.fault in ("drop", "flap") and fault.sensor not in SENSORS:
        return f"sensor must be one of {SENSORS}, got {fault.sensor!r}"
    if fault.fault == "flap" and not (fault.period > 0 and 0 < fault.duty < 1):
        return f"needs period > 0 and 0 < duty < 1, got period {fault.period}, duty {fault.duty}"
    if fault.fault == "malformed":
        kinds = MALFORMED_KINDS.get(fault.sensor)
        if kinds is None:
            return f"sensor must be one of {sorted(MALFORMED_KINDS)}, got {fault.sensor!r}"
        if fault.kind not in kinds:
            return f"kind for {fault.sensor} must be one of {kinds}, got {fault.kind!r}"
        if fault.count < 1:
            return f"count must be >= 1, got {fault.count}"
    if fault.fault in ("battery_drain", "battery_jump") and not 0 <= fault.to <= 1:
        return f"to must be a charge in [0, 1], got {fault.to}"
    return None


@dataclass(frozen=True)
class FaultSchedule:
    faults: tuple[Fault, ...] = ()

    @classmethod
    def from_dict(cls, data) -> "FaultSchedule":
        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"faults"}:
            raise FaultScheduleError(f"expected a mapping with only a 'faults' list, got {data!r}")
        entries = data.get("faults") or []
        if not isinstance(entries, list):
            raise FaultScheduleError(f"'faults' must be a list, got {type(entries).__name__}")
        faults = tuple(_parse_fault(i, entry) for i, entry in enumerate(entries))
        return cls(tuple(sorted(faults, key=lambda f: f.at)))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "FaultSchedule":
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise FaultScheduleError(f"cannot read fault schedule {path}: {error}") from None
        return cls.from_dict(data)

    @property
    def end_s(self) -> float:
        """When the last fault is over."""
        return max((f.end for f in self.faults), default=0.0)

    def publishing(self, sensor: str, t: float) -> bool:
        """Whether `sensor` publishes at time t (not dropped, not in a flap's off phase)."""
        for f in self.faults:
            if f.sensor != sensor or not f.active(t):
                continue
            if f.fault == "drop":
                return False
            if f.fault == "flap" and ((t - f.at) % f.period) >= f.duty * f.period:
                return False
        return True

    def battery(self, t: float, initial: float) -> tuple[float, bool]:
        """(percentage field to publish, charging) at time t, starting from charge `initial`."""
        charge = initial
        battery_events = [f for f in self.faults if f.fault in ("battery_drain", "battery_jump") and f.at <= t]
        for i, f in enumerate(battery_events):
            # Evaluate each event until the next one takes over (or until t).
            until = battery_events[i + 1].at if i + 1 < len(battery_events) else t
            if f.fault == "battery_jump":
                charge = f.to
            elif f.duration == 0 or until >= f.end:
                charge = f.to
            else:
                charge += (f.to - charge) * (until - f.at) / f.duration
        raw = [f for f in self.faults if f.fault == "battery_raw" and f.active(t)]
        charging = any(f.fault == "battery_charging" and f.active(t) for f in self.faults)
        return (raw[-1].value if raw else charge), charging


@dataclass
class MalformedInjector:
    """Hands out each malformed fault's `count` messages, one per regular message, from its `at` on."""

    schedule: FaultSchedule
    _left: dict[int, int] = field(default_factory=dict)

    def __post_init__(self):
        self._left = {i: f.count for i, f in enumerate(self.schedule.faults) if f.fault == "malformed"}

    def take(self, sensor: str, t: float) -> str | None:
        """Kind of malformed message to send beside the regular `sensor` message at t, if any."""
        for i, left in self._left.items():
            fault = self.schedule.faults[i]
            if left > 0 and fault.sensor == sensor and fault.at <= t:
                self._left[i] = left - 1
                return fault.kind
        return None
