"""Battery readings from sensor_msgs/BatteryState, normalised to 0..1, with staleness.

No rclpy: `now` is seconds on one monotonic clock. The rules (also the user documentation):

- percentage in [0, 1] is used as is (the message definition's range).
- percentage in (1, 1 + OVERSHOOT] is rounding overshoot of a 0..1 source: clamped to 1, WARN.
- percentage in (1 + OVERSHOOT, 100] may come from a 0..100 source. In the default `auto` scale
  one such reading is not evidence enough (BatteryState defines 0..1, and a single glitch must
  not change how every later reading is read): it is ignored, WARN, until PERCENT_EVIDENCE
  readings in a row are above 1 + OVERSHOOT; then the source is treated as 0..100 for good
  (divided by 100, WARN), so 0.8 from it means 0.8 %, not 80 %. A reading in [0, 1] before
  that restarts the count. `fraction` or `percent` fixes the scale instead of detecting it.
- NaN or +-Inf ("unmeasured" per the message): charge / capacity is used when both are finite
  and capacity > 0, WARN; otherwise the reading is ignored, WARN.
- negative, or above 100: the reading is ignored, WARN.
- Ignored readings do not refresh the battery; with no usable reading for `timeout_s` the battery
  is stale: percentage NaN, WARN (the power level then falls back, see power_level).
- charging = power_supply_status is CHARGING or FULL (from the latest usable reading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sensor_msgs.msg import BatteryState

SCALES = ("auto", "fraction", "percent")
CHARGING_STATUSES = (BatteryState.POWER_SUPPLY_STATUS_CHARGING, BatteryState.POWER_SUPPLY_STATUS_FULL)
# How far above 1.0 a 0..1 source may overshoot (float rounding of charge/capacity) before the
# value is read as percent.
OVERSHOOT = 0.01
# Readings in a row above 1 + OVERSHOOT before `auto` reads the source as 0..100.
PERCENT_EVIDENCE = 3


@dataclass(frozen=True)
class BatteryReading:
    percentage: float  # 0..1, NaN when the reading is unusable
    charging: bool
    warning: str = ""  # why the raw value was corrected or ignored; "" for a clean reading

    @property
    def usable(self) -> bool:
        return not math.isnan(self.percentage)


class BatteryNormaliser:
    def __init__(self, scale: str = "auto"):
        if scale not in SCALES:
            raise ValueError(f"percentage scale must be one of {SCALES}, got {scale!r}")
        self.scale = scale
        self.percent_source = scale == "percent"
        self.percent_readings = 0  # in a row, above 1 + OVERSHOOT (auto scale)

    def normalise(self, percentage: float, charge: float, capacity: float, status: int) -> BatteryReading:
        charging = status in CHARGING_STATUSES
        if not math.isfinite(percentage):
            if math.isfinite(charge) and math.isfinite(capacity) and capacity > 0 and 0 <= charge <= capacity:
                return BatteryReading(charge / capacity, charging, f"percentage is {percentage}; used charge/capacity")
            return BatteryReading(math.nan, charging, f"percentage is {percentage} and charge/capacity unusable; reading ignored")
        if percentage < 0:
            return BatteryReading(math.nan, charging, f"percentage {percentage:g} is negative; reading ignored")
        if percentage > 100:
            return BatteryReading(math.nan, charging, f"percentage {percentage:g} is above 100; reading ignored")
        if self.percent_source:
            return BatteryReading(percentage / 100, charging, self._percent_warning(percentage))
        if percentage <= 1:
            self.percent_readings = 0
            return BatteryReading(percentage, charging)
        if percentage <= 1 + OVERSHOOT:
            return BatteryReading(1.0, charging, f"percentage {percentage:g} slightly above 1; clamped to 1")
        if self.scale == "fraction":
            return BatteryReading(math.nan, charging, f"percentage {percentage:g} is above 1 (scale 'fraction'); reading ignored")
        self.percent_readings += 1
        if self.percent_readings < PERCENT_EVIDENCE:
            return BatteryReading(math.nan, charging, (
                f"percentage {percentage:g} is above 1; reading ignored until {PERCENT_EVIDENCE} in a row say the "
                f"source is 0..100 ({self.percent_readings}/{PERCENT_EVIDENCE})"))
        self.percent_source = True
        return BatteryReading(percentage / 100, charging, self._percent_warning(percentage))

    def _percent_warning(self, percentage: float) -> str:
        if self.scale == "percent":
            return ""  # the user declared the 0..100 scale: nothing to warn about
        return f"source reports 0..100 (latest {percentage:g}); divided by 100"


@dataclass(frozen=True)
class BatterySnapshot:
    """What the monitor publishes about the battery at one instant."""

    percentage: float  # NaN when unknown or stale
    charging: bool
    received: bool  # any BatteryState seen since activation
    stale: bool  # received, but no usable reading within timeout_s
    age_s: float  # since the last usable reading, +inf if none
    warning: str  # of the latest message, "" if it was clean


class BatteryMonitor:
    def __init__(self, timeout_s: float, scale: str = "auto"):
        if not timeout_s > 0:
            raise ValueError(f"battery timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.normaliser = BatteryNormaliser(scale)
        self.messages = 0
        self.ignored = 0
        self._last: BatteryReading | None = None
        self._last_time: float | None = None
        self._warning = ""

    def reconfigure(self, timeout_s: float, scale: str) -> None:
        """New limits; a changed scale restarts 0..100 detection."""
        self.timeout_s = timeout_s
        if scale != self.normaliser.scale:
            self.normaliser = BatteryNormaliser(scale)

    def on_message(self, now: float, percentage: float, charge: float, capacity: float, status: int) -> BatteryReading:
        reading = self.normaliser.normalise(percentage, charge, capacity, status)
        self.messages += 1
        self._warning = reading.warning
        if reading.usable:
            self._last, self._last_time = reading, now
        else:
            self.ignored += 1
        return reading

    def snapshot(self, now: float) -> BatterySnapshot:
        age = math.inf if self._last_time is None else max(0.0, now - self._last_time)
        fresh = age < self.timeout_s
        return BatterySnapshot(
            percentage=self._last.percentage if fresh else math.nan,
            charging=self._last.charging if fresh else False,
            received=self.messages > 0,
            stale=self.messages > 0 and not fresh,
            age_s=age,
            warning=self._warning,
        )
