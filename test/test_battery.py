"""Battery normalisation, staleness and the power-level hysteresis, with a fake clock."""

import math

import pytest
from sensor_msgs.msg import BatteryState

from sentryfuse_ros.nodes.battery import PERCENT_EVIDENCE, BatteryMonitor, BatteryNormaliser
from sentryfuse_ros.nodes.power_level import PowerConfig, PowerLevelSelector

NAN = float("nan")
DISCHARGING = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
CHARGING = BatteryState.POWER_SUPPLY_STATUS_CHARGING
FULL = BatteryState.POWER_SUPPLY_STATUS_FULL


def _read(normaliser, percentage, charge=NAN, capacity=NAN, status=DISCHARGING):
    return normaliser.normalise(percentage, charge, capacity, status)


def test_fraction_is_used_as_is():
    reading = _read(BatteryNormaliser(), 0.42)
    assert reading.percentage == pytest.approx(0.42) and reading.warning == "" and reading.usable


def test_one_reading_above_1_does_not_change_how_later_readings_are_read():
    normaliser = BatteryNormaliser("auto")
    glitch = _read(normaliser, 7.0)
    assert not glitch.usable and "1/3" in glitch.warning
    assert _read(normaliser, 0.9).percentage == pytest.approx(0.9)
    assert not _read(normaliser, 50.0).usable and not _read(normaliser, 50.0).usable, "the count restarted"


def test_percent_values_are_scaled_and_the_source_stays_percent():
    normaliser = BatteryNormaliser("auto")
    for _ in range(PERCENT_EVIDENCE - 1):
        assert not _read(normaliser, 85.0).usable  # not yet evidence enough
    first = _read(normaliser, 85.0)
    assert first.percentage == pytest.approx(0.85) and "0..100" in first.warning
    later = _read(normaliser, 0.8)  # 0.8 % from a percent source, not 80 %
    assert later.percentage == pytest.approx(0.008) and later.warning


def test_rounding_overshoot_of_a_fraction_source_is_clamped_not_read_as_percent():
    normaliser = BatteryNormaliser("auto")
    reading = _read(normaliser, 1.004)
    assert reading.percentage == 1.0 and "clamped" in reading.warning
    assert _read(normaliser, 0.5).percentage == 0.5


def test_declared_scales():
    assert not _read(BatteryNormaliser("fraction"), 85.0).usable
    percent = _read(BatteryNormaliser("percent"), 50.0)
    assert percent.percentage == 0.5 and percent.warning == ""
    with pytest.raises(ValueError):
        BatteryNormaliser("per-mille")


@pytest.mark.parametrize("value", [NAN, math.inf, -math.inf])
def test_unmeasured_percentage_falls_back_to_charge_over_capacity(value):
    reading = _read(BatteryNormaliser(), value, charge=1.5, capacity=6.0)
    assert reading.percentage == pytest.approx(0.25) and "charge/capacity" in reading.warning


def test_unmeasured_percentage_without_charge_is_ignored():
    reading = _read(BatteryNormaliser(), NAN, charge=0.0, capacity=0.0)  # BatteryState defaults
    assert not reading.usable and "ignored" in reading.warning


@pytest.mark.parametrize("value", [-0.01, -1.0, 100.5, 1e6])
def test_out_of_range_values_are_ignored(value):
    reading = _read(BatteryNormaliser(), value)
    assert not reading.usable and "ignored" in reading.warning


@pytest.mark.parametrize("status, charging", [(CHARGING, True), (FULL, True), (DISCHARGING, False),
                                              (BatteryState.POWER_SUPPLY_STATUS_UNKNOWN, False)])
def test_charging_comes_from_power_supply_status(status, charging):
    assert _read(BatteryNormaliser(), 0.5, status=status).charging is charging


def test_monitor_goes_stale_and_ignored_readings_do_not_refresh_it():
    battery = BatteryMonitor(timeout_s=5.0)
    assert not battery.snapshot(0.0).received and math.isnan(battery.snapshot(0.0).percentage)
    battery.on_message(0.0, 0.6, NAN, NAN, CHARGING)
    battery.on_message(3.0, NAN, NAN, NAN, CHARGING)  # ignored: keeps the 0.6 of t=0
    snapshot = battery.snapshot(4.9)
    assert snapshot.percentage == pytest.approx(0.6) and snapshot.charging and "ignored" in snapshot.warning
    stale = battery.snapshot(5.0)
    assert stale.stale and math.isnan(stale.percentage) and not stale.charging
    assert battery.ignored == 1 and battery.messages == 2


def test_changing_the_scale_restarts_detection():
    battery = BatteryMonitor(timeout_s=5.0)
    battery.on_message(0.0, 85.0, NAN, NAN, DISCHARGING)
    battery.reconfigure(5.0, "fraction")
    assert battery.on_message(1.0, 0.5, NAN, NAN, DISCHARGING).percentage == 0.5


CONFIG = PowerConfig(thresholds=(0.75, 0.40, 0.15), hysteresis=0.05, unknown_level="normal", charging_level="full")


@pytest.mark.parametrize("percentage, level", [(1.0, 0), (0.75, 0), (0.74, 1), (0.40, 1), (0.39, 2), (0.15, 2),
                                               (0.149, 3), (0.0, 3)])
def test_levels_from_thresholds(percentage, level):
    assert PowerLevelSelector(CONFIG).update(percentage, charging=False) == level


def test_going_down_is_immediate_going_up_needs_the_hysteresis():
    selector = PowerLevelSelector(CONFIG)
    assert selector.update(0.41, False) == 1
    assert selector.update(0.39, False) == 2  # below 0.40: low at once
    assert selector.update(0.42, False) == 2  # above 0.40 but not 0.45: stays low
    assert selector.update(0.44, False) == 2
    assert selector.update(0.45, False) == 1
    assert selector.update(0.95, False) == 0  # far above: straight to full


def test_hovering_at_a_threshold_does_not_flap():
    selector = PowerLevelSelector(CONFIG)
    levels = [selector.update(0.40 + 0.02 * math.sin(i), False) for i in range(200)]
    assert sum(a != b for a, b in zip(levels, levels[1:])) <= 1


def test_unknown_battery_uses_the_unknown_level_and_forgets_the_hysteresis():
    selector = PowerLevelSelector(CONFIG)
    selector.update(0.39, False)
    assert selector.update(NAN, False) == 1  # unknown -> normal
    assert selector.update(0.42, False) == 1  # fresh start: no memory of "low"


def test_charging_level_overrides_and_from_percentage_ignores_charging():
    assert PowerLevelSelector(CONFIG).update(0.05, charging=True) == 0
    ignore = PowerConfig(charging_level="from_percentage")
    assert PowerLevelSelector(ignore).update(0.05, charging=True) == 3
    assert PowerLevelSelector(CONFIG).budget(3) == pytest.approx(0.6)


@pytest.mark.parametrize("kwargs, words", [
    (dict(thresholds=(0.4, 0.75, 0.15)), "decreasing"),
    (dict(thresholds=(0.75, 0.4)), "3 values"),
    (dict(hysteresis=0.3), "hysteresis"),
    (dict(pruning_budgets=(0.0, 0.2, 0.4, 1.0)), "pruning_budgets"),
    (dict(unknown_level="medium"), "unknown_level"),
    (dict(charging_level="turbo"), "charging_level"),
])
def test_bad_power_config_is_rejected_with_a_reason(kwargs, words):
    config = PowerConfig(**kwargs)
    assert words in config.problem()
    with pytest.raises(ValueError, match=words):
        PowerLevelSelector(config)
