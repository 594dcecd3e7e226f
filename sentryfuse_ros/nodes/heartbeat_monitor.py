"""heartbeat_monitor: which sensors are alive and how much power is left, as ModalityState.

Subscribes camera (Image or CompressedImage), IMU, audio (AudioChunk) and BatteryState;
publishes ModalityState on every change and at heartbeat_hz (latched: a late subscriber gets
the current state), and /diagnostics. The decisions are made by plain-Python state machines
(liveness, battery, power_level); this node feeds them messages and time.

    python -m sentryfuse_ros.nodes.heartbeat_monitor --ros-args --params-file config/sentryfuse.yaml

Sensor messages are not handled one by one: they wait in the middleware's queues
(nodes/sensor_feed.py, `ingestion: polled`), sized so that nothing is overwritten between two
looks at any power level, and are judged by the time each reached the process (rmw's reception
stamp), not by when they are taken. One watchdog timer says when the monitor looks, by the rule
of nodes/watch_schedule.py and the check period of the current power level
(power.check_periods_s): at period 0 when the first sensor's newest valid message is timeout_s
old (a dead sensor every RECOVERY_POLL_S), at a period P > 0 at least P apart for all sensors
together. At each look the monitor takes every queued message of every sensor, declares dead
each live sensor still silent for its timeout, and arms the watchdog again. So at period 0 a
sensor dies timeout_s after its last message, as with a per-message watchdog, for a few
wake-ups per timeout instead of one per message; at P it dies within timeout_s + P, for about
1/P wake-ups a second. A change of power level (or of the parameters) re-arms the watchdog at
once. Recovery, rates and invalid counts do not depend on when the monitor looks: every
message is taken and judged at its arrival. With qos_deadline the subscriptions ask for a
deadline, so only publishers that offer one match. Any message that fails the stamp check or
its reader (decode) is counted as invalid with the reason.
"""

from __future__ import annotations

import sys
import time
from functools import partial

from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import BatteryState, CompressedImage, Image, Imu

from sentryfuse.msg import AudioChunk, ModalityState
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes import decode, diagnostics
from sentryfuse_ros.nodes.battery import BatteryMonitor
from sentryfuse_ros.nodes.lifecycle import SentryLifecycleNode, run_node
from sentryfuse_ros.nodes.liveness import SensorLiveness
from sentryfuse_ros.nodes.monitor_params import PARAMS, MonitorConfig, cross_check
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES, PowerLevelSelector
from sentryfuse_ros.nodes.qos import latched_state_qos, reliable_qos, sensor_qos
from sentryfuse_ros.nodes.sensor_feed import Delivery, ingestion_problem
from sentryfuse_ros.nodes.stamps import NS_PER_S, StampCheck
from sentryfuse_ros.nodes.watch_schedule import RECOVERY_POLL_S, Watch, next_look

FAILURE = TransitionCallbackReturn.FAILURE
# A watchdog is never set closer than this: a timer due "now" would spin.
MIN_WATCHDOG_S = 0.001


class HeartbeatMonitor(SentryLifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("heartbeat_monitor", PARAMS, **kwargs)
        self._feed = None
        # Liveness runs on the steady clock (time.monotonic is the same CLOCK_MONOTONIC), so
        # neither a ROS time jump nor use_sim_time can kill or revive a sensor.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._config: MonitorConfig | None = None
        self._state_pub = self._diag_pub = None
        self._subscriptions_by_sensor: dict = {}
        self._deadlines_s: dict[str, float] = {}  # each sensor subscription's QoS deadline (as at activation)
        self._watchdog = None  # when the monitor next looks at the sensor queues
        self._last_look = 0.0  # time.monotonic() of the last look
        self._looks = 0
        self._announced_period_s: float | None = None
        self._periodic: list = []

    def cross_check(self, values):
        return ingestion_problem(values) or cross_check(values)

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        values = self.checked_parameters()
        if values is None:
            return FAILURE
        self._config = MonitorConfig.from_values(values)
        # Every QoS event handler is one more waitable the executor polls on each wake-up (about
        # a millisecond of CPU per message here), so only the handlers this node uses are made;
        # a subscriber with incompatible QoS is still told so by its own default handler.
        quiet = PublisherEventCallbacks(use_default_callbacks=False)
        self._state_pub = self.create_lifecycle_publisher(
            ModalityState, self._config.state_topic, latched_state_qos(), event_callbacks=quiet)
        self._diag_pub = self.create_lifecycle_publisher(
            DiagnosticArray, "/diagnostics", reliable_qos(10), event_callbacks=quiet)
        self._reset_state()
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self._reset_state()  # what was heard before a deactivation says nothing about now
        self._subscribe()
        self._last_look = time.monotonic()
        self._start_timers()
        self._publish_state()
        return result

    def on_parameters_changed(self, values) -> None:
        if self._config is None:
            return  # read at configure
        self._config = MonitorConfig.from_values(values)
        for sensor, tracker in self._trackers.items():
            tracker.reconfigure(self._config.sensors[sensor].liveness)
            self._stamp_checks[sensor].limits = self._config.stamp_limits
        self._battery.reconfigure(self._config.battery_timeout_s, self._config.battery_scale)
        self._power.reconfigure(self._config.power)
        if self._periodic:  # active
            self._stop_timers()
            self._deepen_queues()
            self._start_timers()  # the watchdog at the new check period, from the last look
            self._publish_state()  # and again if the power level changed with the parameters

    # --- state -----------------------------------------------------------------------------
    def _reset_state(self) -> None:
        cfg = self._config
        self._trackers = {s: SensorLiveness(cfg.sensors[s].liveness) for s in MODALITIES}
        self._stamp_checks = {s: StampCheck(cfg.stamp_limits) for s in MODALITIES}
        self._frame_ids = {s: "" for s in (*MODALITIES, "battery")}
        self._battery = BatteryMonitor(cfg.battery_timeout_s, cfg.battery_scale)
        self._power = PowerLevelSelector(cfg.power)
        self._power_level = self._power.update(float("nan"), False)
        self._published_key = None

    def _subscribe(self) -> None:
        cfg = self._config
        self._feed = self.feeds.get(cfg.ingestion)
        for sensor in MODALITIES:
            self._deadlines_s[sensor] = cfg.sensors[sensor].liveness.timeout_s if cfg.qos_deadline else 0.0
        for name in (*MODALITIES, "battery"):
            self._subscriptions_by_sensor[name] = self._subscribe_one(name)

    def _subscribe_one(self, name: str):
        """The feed subscription of one sensor (or the battery), with the queue depth the current
        config needs (MonitorConfig: the longest wait between two looks at any power level)."""
        cfg = self._config
        if name == "battery":  # it waits in its queue too, read at the next look
            return self._feed.subscribe(self, BatteryState, cfg.battery_topic,
                                        sensor_qos(cfg.reliability, depth=cfg.battery_queue_depth), self._on_battery)
        # A raw frame is checked, not converted: the monitor needs its validity, not its pixels.
        msg_type, read = {
            "camera": ((CompressedImage, decode.image_from_compressed_msg) if cfg.camera_compressed
                       else (Image, decode.check_image_msg)),
            "imu": (Imu, lambda msg: decode.imu_sample_from_msg(msg, decode.ACCEL_AXES)),
            "audio": (AudioChunk, lambda msg: decode.audio_from_msg(msg, self._config.audio_sample_rate)),
        }[name]
        settings = cfg.sensors[name]
        return self._feed.subscribe(
            self, msg_type, settings.topic, sensor_qos(cfg.reliability, self._deadlines_s[name], settings.queue_depth),
            partial(self._on_sensor_messages, name, read),
        )

    def _deepen_queues(self) -> None:
        """After a parameter change (a longer check period or timeout): give each queue that is now
        too shallow for the longest wait between looks a deeper one, so none overflows. Whatever
        is queued is taken first; a queue that is deep enough is kept as it is."""
        cfg = self._config
        needed = {s: cfg.sensors[s].queue_depth for s in MODALITIES} | {"battery": cfg.battery_queue_depth}
        shallow = [name for name, depth in needed.items() if self._subscriptions_by_sensor[name].depth < depth]
        if not shallow:
            return
        self._feed.drain(self._subscriptions_by_sensor.values())
        for name in shallow:
            old = self._subscriptions_by_sensor[name]
            self._subscriptions_by_sensor[name] = self._subscribe_one(name)
            self._feed.unsubscribe(old)
        self.get_logger().info("deeper queues for the longer wait between looks: " + ", ".join(
            f"{name} {needed[name]}" for name in shallow))

    def _start_timers(self) -> None:
        cfg = self._config
        self._watchdog = self.create_timer(RECOVERY_POLL_S, self._on_watchdog, clock=self._steady)
        self._arm_watchdog()
        self._periodic = [
            self.create_timer(1.0 / cfg.heartbeat_hz, self._publish_state, clock=self._steady),
            self.create_timer(1.0 / cfg.diagnostics_hz, self._publish_diagnostics, clock=self._steady),
        ]

    def _stop_timers(self) -> None:
        for timer in (self._watchdog, *self._periodic):
            if timer is not None:
                self.destroy_timer(timer)
        self._watchdog, self._periodic = None, []

    @property
    def check_period_s(self) -> float:
        """The check period of the current power level (power.check_periods_s)."""
        return self._config.check_periods_s[self._power_level]

    def _arm_watchdog(self) -> None:
        """Set the watchdog to the next look (watch_schedule.next_look), from the last look, at the
        current power level's check period; a look already due happens at once."""
        if self._watchdog is None:
            return
        period_s = self.check_period_s
        watches = [Watch(t.alive, t.last_valid, t.config.timeout_s) for t in self._trackers.values()]
        due_in_s = next_look(self._last_look, watches, period_s) - time.monotonic()
        self._watchdog.timer_period_ns = int(max(due_in_s, MIN_WATCHDOG_S) * NS_PER_S)
        self._watchdog.reset()
        if period_s != self._announced_period_s:
            self._announced_period_s = period_s
            self.get_logger().info(
                f"power {LEVEL_NAMES[self._power_level]}: " + (
                    f"looking at the sensors at least {period_s:g} s apart (a dropout is seen within its timeout "
                    f"+ {period_s:g} s)" if period_s > 0 else "looking at each sensor when its timeout is due"))

    def _stop(self) -> None:
        for subscription in self._subscriptions_by_sensor.values():
            self._feed.unsubscribe(subscription)
        self._subscriptions_by_sensor = {}
        self._stop_timers()

    def _release(self) -> None:
        self.destroy_lifecycle_publishers((self._state_pub, self._diag_pub))
        self._state_pub = self._diag_pub = None
        self._config = None

    # --- callbacks -------------------------------------------------------------------------
    def _on_sensor_messages(self, sensor: str, read, deliveries: list[Delivery]) -> None:
        """Messages taken from one sensor's queue, oldest first, each judged at its arrival."""
        now, now_ros_ns = time.monotonic(), self.get_clock().now().nanoseconds
        stamps, tracker = self._stamp_checks[sensor], self._trackers[sensor]
        revived = False
        for delivery in deliveries:
            msg = delivery.msg
            arrival, arrival_ros_ns = delivery.arrival(now, now_ros_ns)
            problem = stamps.problem(msg.header.stamp, arrival_ros_ns)
            if problem is None:
                try:
                    read(msg)
                except InvalidInput as error:
                    problem = str(error)
                except Exception as error:  # noqa: BLE001 - no message may take the monitor down
                    problem = f"unreadable message ({type(error).__name__}: {error})"
            if problem:
                tracker.on_invalid(arrival, problem)
                self.get_logger().warning(f"{sensor}: invalid message: {problem}", throttle_duration_sec=1.0)
                continue
            stamps.accept(msg.header.stamp)
            self._frame_ids[sensor] = msg.header.frame_id
            revived |= tracker.on_valid(arrival)
        if revived:
            self._publish_state()

    def _on_watchdog(self) -> None:
        """A look: take every queued message, apply the timeouts, arm the next look."""
        self._feed.drain(self._subscriptions_by_sensor.values())
        now = time.monotonic()
        died = [sensor for sensor, tracker in self._trackers.items() if tracker.update(now)]
        self._last_look = now
        self._looks += 1
        self._arm_watchdog()
        if died:
            self._publish_state()

    def _on_battery(self, deliveries: list[Delivery]) -> None:
        now = time.monotonic()
        for delivery in deliveries:
            msg = delivery.msg
            reading = self._battery.on_message(
                delivery.arrival(now, 0)[0], msg.percentage, msg.charge, msg.capacity, msg.power_supply_status
            )
            self._frame_ids["battery"] = msg.header.frame_id
            if reading.warning:
                self.get_logger().warning(f"battery: {reading.warning}", throttle_duration_sec=10.0)
        snapshot = self._refresh_power(time.monotonic())
        if self._state_key(snapshot) != self._published_key:
            self._publish_state()

    # --- output ----------------------------------------------------------------------------
    def _refresh_power(self, now: float):
        """The battery snapshot at `now`, with the power level brought up to date from it."""
        snapshot = self._battery.snapshot(now)
        level = self._power.update(snapshot.percentage, snapshot.charging)
        if level != self._power_level:
            self._power_level = level
            self._arm_watchdog()  # the new level's check period now, not after the old one's wait
        return snapshot

    def _state_key(self, snapshot) -> tuple:
        """What counts as a change: the live set, the power level and charging."""
        return tuple(t.alive for t in self._trackers.values()), self._power_level, snapshot.charging

    def _publish_state(self) -> None:
        now = time.monotonic()
        snapshot = self._refresh_power(now)
        key = self._state_key(snapshot)
        msg = ModalityState()
        msg.header.stamp = self.get_clock().now().to_msg()
        for sensor, tracker in self._trackers.items():
            setattr(msg, f"{sensor}_alive", tracker.alive)
            setattr(msg, f"{sensor}_age_s", tracker.age(now))
            setattr(msg, f"{sensor}_rate_hz", tracker.rate_hz(now))
        msg.live_modalities = [s for s, tracker in self._trackers.items() if tracker.alive]
        msg.battery_percentage = snapshot.percentage
        msg.charging = snapshot.charging
        msg.power_level = self._power_level
        msg.power_level_name = LEVEL_NAMES[self._power_level]
        msg.pruning_budget = self._power.budget(self._power_level)
        self._state_pub.publish(msg)
        if key != self._published_key:
            self.get_logger().info(
                f"live [{', '.join(msg.live_modalities)}], power {msg.power_level_name}"
                f"{' (charging)' if msg.charging else ''}, battery {msg.battery_percentage:.2f}"
            )
            self._published_key = key

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        cfg = self._config
        statuses = []
        for sensor, tracker in self._trackers.items():
            polled = self._feed.topic(self._subscriptions_by_sensor[sensor])
            status = diagnostics.sensor_status(
                sensor, self._frame_ids[sensor] or polled.topic, polled.topic, tracker, now,
                cfg.sensors[sensor].expectation, polled.qos_problem,
            )
            counters = polled.counters
            status.values += [KeyValue(key=key, value=str(value)) for key, value in (
                ("published", counters.published), ("taken", counters.taken), ("lost", counters.lost))]
            statuses.append(status)
        battery_topic = self._feed.topic(self._subscriptions_by_sensor["battery"]).topic
        battery = diagnostics.battery_status(
            self._frame_ids["battery"] or battery_topic, battery_topic, self._battery.snapshot(now),
            self._power_level, self._power.budget(self._power_level), self._battery.ignored,
        )
        # How often the sensors are looked at, at this power level: 0 = at each sensor's timeout.
        battery.values += [KeyValue(key="check_period_s", value=f"{self.check_period_s:.3f}"),
                           KeyValue(key="looks", value=str(self._looks))]
        statuses.append(battery)
        msg = DiagnosticArray(status=statuses)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(HeartbeatMonitor, args)


if __name__ == "__main__":
    sys.exit(main())
