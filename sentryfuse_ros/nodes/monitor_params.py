"""heartbeat_monitor's parameters (the one place they are declared) and the config built from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.battery import SCALES
from sentryfuse_ros.nodes.diagnostics import SensorExpectation
from sentryfuse_ros.nodes.liveness import LivenessConfig
from sentryfuse_ros.nodes.params import ParamSpec
from sentryfuse_ros.nodes.power_level import FROM_PERCENTAGE, LEVEL_NAMES, PowerConfig
from sentryfuse_ros.nodes.qos import RELIABILITIES
from sentryfuse_ros.nodes.sensor_feed import INGESTION_MODES
from sentryfuse_ros.nodes.stamps import StampLimits
from sentryfuse_ros.nodes.watch_schedule import longest_wait_s

# topic, expected rate, timeout, recover_messages. Timeout = 2 periods + 30 ms: the detection
# target is 2 periods + 50 ms, and delivery plus wake-up take up to ~15 ms on a busy machine
# (sentryfuse bench monitor); every extra ms of timeout absorbs publisher jitter.
# recover_messages = about one second of messages.
SENSOR_DEFAULTS = {
    "camera": ("camera/image_raw", 15.0, 0.163, 15),
    "imu": ("imu/data", 100.0, 0.05, 100),
    "audio": ("audio/chunk", 20.0, 0.13, 20),
}


def _sensor_specs(sensor: str) -> tuple[ParamSpec, ...]:
    topic, rate, timeout, recover = SENSOR_DEFAULTS[sensor]
    return (
        ParamSpec(f"{sensor}.topic", topic, f"{sensor} topic (relative names follow the namespace)", read_only=True),
        ParamSpec(f"{sensor}.expected_rate_hz", rate, f"nominal {sensor} message rate", minimum=0.0, min_exclusive=True),
        ParamSpec(f"{sensor}.timeout_s", timeout,
                  f"{sensor} is dead after this long without a valid message; must exceed 1/expected_rate_hz",
                  minimum=0.0, maximum=60.0, min_exclusive=True),
        ParamSpec(f"{sensor}.recover_messages", recover,
                  f"consecutive valid {sensor} messages needed before a dead {sensor} counts as alive",
                  minimum=1, maximum=100000),
    )


PARAMS: tuple[ParamSpec, ...] = (
    *(spec for sensor in MODALITIES for spec in _sensor_specs(sensor)),
    ParamSpec("camera.compressed", False, "subscribe sensor_msgs/CompressedImage instead of Image", read_only=True),
    # 0: a 44.1 or 48 kHz microphone is as alive as a 16 kHz one (inference_node resamples).
    ParamSpec("audio.sample_rate", 0, "required AudioChunk sample_rate in Hz, 0 accepts any",
              minimum=0, maximum=384000),
    ParamSpec("battery.topic", "battery/state", "sensor_msgs/BatteryState topic", read_only=True),
    ParamSpec("battery.timeout_s", 5.0, "battery readings older than this are stale", minimum=0.0,
              maximum=3600.0, min_exclusive=True),
    ParamSpec("battery.percentage_scale", "auto",
              "scale of BatteryState.percentage: fraction (0..1), percent (0..100) or auto (detect 0..100)",
              choices=SCALES),
    ParamSpec("power.thresholds", (0.75, 0.40, 0.15),
              "lowest battery fraction of the full, normal and low power levels (below the last: critical)",
              minimum=0.0, maximum=1.0, min_exclusive=True),
    ParamSpec("power.hysteresis", 0.05, "extra battery fraction needed to climb back to a higher power level",
              minimum=0.0, maximum=0.5),
    ParamSpec("power.pruning_budgets", (0.0, 0.2, 0.4, 0.6),
              "pruning_budget published for the full, normal, low and critical power levels",
              minimum=0.0, maximum=0.99),
    ParamSpec("power.check_periods_s", (0.0, 0.0, 0.25, 0.5),
              "at the full, normal, low and critical power levels, the monitor looks at the sensor queues at "
              "least this many seconds apart: 0 looks when each sensor's timeout is due (a dropout is detected "
              "timeout_s after the last valid message); P > 0 looks about every P s for all sensors together "
              "(about 1/P wake-ups a second), so a dropout is detected within timeout_s + P, never before timeout_s",
              minimum=0.0, maximum=5.0),
    ParamSpec("power.unknown_level", "normal", "power level while the battery is unknown or stale",
              choices=LEVEL_NAMES),
    ParamSpec("power.charging_level", "full",
              f"power level while charging; {FROM_PERCENTAGE} ignores charging", choices=(*LEVEL_NAMES, FROM_PERCENTAGE)),
    ParamSpec("state_topic", "sentryfuse/modality_state", "ModalityState output topic", read_only=True),
    ParamSpec("reliability", "best_effort", "reliability of the sensor subscriptions", choices=RELIABILITIES,
              read_only=True),
    ParamSpec("ingestion", "polled", "how sensor messages are taken: polled (queued in the middleware and taken "
              "when a sensor's timeout is due, no executor wake-up per message) or callbacks (one wake-up per message)",
              choices=tuple(INGESTION_MODES), read_only=True),
    ParamSpec("qos_deadline", False,
              "request a QoS deadline of each sensor's timeout_s (as at activation) for middleware deadline events; "
              "publishers must then offer a deadline <= timeout_s or they are not matched", read_only=True),
    ParamSpec("heartbeat_hz", 2.0, "ModalityState is also published at this steady rate", minimum=0.1, maximum=100.0),
    ParamSpec("diagnostics_hz", 1.0, "/diagnostics publishing rate", minimum=0.1, maximum=100.0),
    ParamSpec("rate_window_s", 1.0, "window of the measured message rates", minimum=0.1, maximum=60.0),
    ParamSpec("min_rate_fraction", 0.5, "diagnostics WARN while a live sensor runs below this fraction of its "
              "expected rate", minimum=0.0, maximum=1.0),
    ParamSpec("invalid_warn_hold_s", 5.0, "diagnostics WARN for this long after an invalid message",
              minimum=0.0, maximum=3600.0),
    ParamSpec("stamp.future_tolerance_s", 0.5, "messages stamped further than this in the future are invalid "
              "(0 disables)", minimum=0.0, maximum=3600.0),
    ParamSpec("stamp.max_age_s", 1.0, "messages stamped longer than this ago are invalid (0 disables)",
              minimum=0.0, maximum=3600.0),
)


# BatteryState comes at about 1 Hz.
BATTERY_RATE_HZ = 1.0
BATTERY_MIN_QUEUE_DEPTH = 5


def queue_depth(rate_hz: float, longest_wait_s: float) -> int:
    """The one queue-depth rule: messages queued over the longest wait between two looks
    (watch_schedule.longest_wait_s), for a stream up to twice its rate, with a factor 2 for a
    busy machine's late wake-ups."""
    return math.ceil(2 * rate_hz * longest_wait_s * 2) + 1


@dataclass(frozen=True)
class SensorSettings:
    topic: str
    liveness: LivenessConfig
    expectation: SensorExpectation
    longest_check_period_s: float = 0.0  # the largest of power.check_periods_s

    @property
    def longest_wait_s(self) -> float:
        return longest_wait_s(self.liveness.timeout_s, self.longest_check_period_s)

    @property
    def queue_depth(self) -> int:
        """Messages queued between two looks at the sensor at any power level (a timeout apart
        while it is alive, RECOVERY_POLL_S while it is dead, a check period where the level has
        one), so no level change needs a deeper queue."""
        return queue_depth(self.expectation.expected_rate_hz, self.longest_wait_s)


@dataclass(frozen=True)
class MonitorConfig:
    sensors: dict[str, SensorSettings]
    camera_compressed: bool
    audio_sample_rate: int
    battery_topic: str
    battery_timeout_s: float
    battery_scale: str
    power: PowerConfig
    check_periods_s: tuple[float, float, float, float]  # per power level (index = level)
    state_topic: str
    reliability: str
    ingestion: str
    qos_deadline: bool
    heartbeat_hz: float
    diagnostics_hz: float
    stamp_limits: StampLimits

    @property
    def battery_queue_depth(self) -> int:
        """BatteryState queued between two looks (the longest wait of any sensor's schedule)."""
        wait_s = max(settings.longest_wait_s for settings in self.sensors.values())
        return max(BATTERY_MIN_QUEUE_DEPTH, queue_depth(BATTERY_RATE_HZ, wait_s))

    @classmethod
    def from_values(cls, v: dict[str, Any]) -> "MonitorConfig":
        check_periods = tuple(float(p) for p in v["power.check_periods_s"])
        sensors = {
            s: SensorSettings(
                topic=v[f"{s}.topic"],
                liveness=LivenessConfig(v[f"{s}.timeout_s"], v[f"{s}.recover_messages"], v["rate_window_s"]),
                expectation=SensorExpectation(v[f"{s}.expected_rate_hz"], v["min_rate_fraction"],
                                              v["invalid_warn_hold_s"]),
                longest_check_period_s=max(check_periods),
            )
            for s in MODALITIES
        }
        return cls(
            sensors=sensors,
            camera_compressed=v["camera.compressed"],
            audio_sample_rate=v["audio.sample_rate"],
            battery_topic=v["battery.topic"],
            battery_timeout_s=v["battery.timeout_s"],
            battery_scale=v["battery.percentage_scale"],
            power=PowerConfig(
                thresholds=tuple(v["power.thresholds"]),
                hysteresis=v["power.hysteresis"],
                pruning_budgets=tuple(v["power.pruning_budgets"]),
                unknown_level=v["power.unknown_level"],
                charging_level=v["power.charging_level"],
            ),
            check_periods_s=check_periods,
            state_topic=v["state_topic"],
            reliability=v["reliability"],
            ingestion=v["ingestion"],
            qos_deadline=v["qos_deadline"],
            heartbeat_hz=v["heartbeat_hz"],
            diagnostics_hz=v["diagnostics_hz"],
            stamp_limits=StampLimits(v["stamp.future_tolerance_s"], v["stamp.max_age_s"]),
        )


def cross_check(v: dict[str, Any]) -> str | None:
    """Rules spanning several parameters; a reason or None."""
    for sensor in MODALITIES:
        period = 1.0 / v[f"{sensor}.expected_rate_hz"]
        if v[f"{sensor}.timeout_s"] <= period:
            return (f"{sensor}.timeout_s ({v[f'{sensor}.timeout_s']:g} s) must exceed one period of "
                    f"{sensor}.expected_rate_hz ({period:g} s), or a healthy stream would look dead")
    return MonitorConfig.from_values(v).power.problem()
