"""heartbeat_monitor: which sensors are alive and how much power is left, as ModalityState.

Subscribes camera (Image or CompressedImage), IMU, audio (AudioChunk) and BatteryState;
publishes ModalityState on every change and at heartbeat_hz (latched: a late subscriber gets
the current state), and /diagnostics. The decisions are made by plain-Python state machines
(liveness, battery, power_level); this node feeds them messages and time.

    python -m sentryfuse_ros.nodes.heartbeat_monitor --ros-args --params-file config/sentryfuse.yaml

A sensor dies when its watchdog timer (period timeout_s, reset by every valid message) fires
and, one executor cycle later (after any waiting message is handled), it is still silent; with
qos_deadline the middleware's deadline-missed events trigger the same check. Any message
that fails the stamp check or its reader (decode) is counted as invalid with the reason.
"""

from __future__ import annotations

import sys
import time
from functools import partial

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
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
from sentryfuse_ros.nodes.qos import latched_state_qos, sensor_qos
from sentryfuse_ros.nodes.stamps import StampCheck

FAILURE = TransitionCallbackReturn.FAILURE
# A reception time further back than this is a system clock step, not a wait.
MAX_WAIT_NS = 5_000_000_000


class HeartbeatMonitor(SentryLifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("heartbeat_monitor", PARAMS, **kwargs)
        # Liveness runs on the steady clock (time.monotonic is the same CLOCK_MONOTONIC), so
        # neither a ROS time jump nor use_sim_time can kill or revive a sensor.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._config: MonitorConfig | None = None
        self._state_pub = self._diag_pub = None
        self._subscriptions_by_sensor: dict = {}
        self._watchdogs: dict = {}
        self._periodic: list = []
        self._verdict = None  # guard condition that runs _judge

    def cross_check(self, values):
        return cross_check(values)

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
        self._diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10, event_callbacks=quiet)
        self._reset_state()
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self._reset_state()  # what was heard before a deactivation says nothing about now
        self._subscribe()
        self._start_timers()
        self._publish_state()
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop()
        self._release()
        return super().on_shutdown(state)

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
            self._start_timers()
            self._publish_state()

    # --- state -----------------------------------------------------------------------------
    def _reset_state(self) -> None:
        cfg = self._config
        self._trackers = {s: SensorLiveness(cfg.sensors[s].liveness) for s in MODALITIES}
        self._stamp_checks = {s: StampCheck(cfg.stamp_limits) for s in MODALITIES}
        self._frame_ids = {s: "" for s in (*MODALITIES, "battery")}
        self._qos_problems = {s: "" for s in (*MODALITIES, "battery")}
        self._battery = BatteryMonitor(cfg.battery_timeout_s, cfg.battery_scale)
        self._power = PowerLevelSelector(cfg.power)
        self._power_level = self._power.update(float("nan"), False)
        self._published_key = None

    def _subscribe(self) -> None:
        cfg = self._config
        camera_type, read_camera = (
            (CompressedImage, decode.image_from_compressed_msg) if cfg.camera_compressed
            else (Image, decode.image_from_msg)
        )
        readers = {
            "camera": (camera_type, read_camera),
            "imu": (Imu, decode.imu_sample_from_msg),
            "audio": (AudioChunk, lambda msg: decode.audio_from_msg(msg, self._config.audio_sample_rate)),
        }
        for sensor, (msg_type, read) in readers.items():
            settings = cfg.sensors[sensor]
            events = SubscriptionEventCallbacks(
                incompatible_qos=partial(self._on_incompatible_qos, sensor),
                deadline=self._on_deadline if cfg.qos_deadline else None,
                use_default_callbacks=False,
            )
            qos = sensor_qos(cfg.reliability, settings.liveness.timeout_s if cfg.qos_deadline else 0.0)
            self._subscriptions_by_sensor[sensor] = self.create_subscription(
                msg_type, settings.topic, partial(self._on_sensor_message, sensor, read), qos, event_callbacks=events
            )
        self._subscriptions_by_sensor["battery"] = self.create_subscription(
            BatteryState, cfg.battery_topic, self._on_battery, sensor_qos(cfg.reliability),
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=partial(self._on_incompatible_qos, "battery"), use_default_callbacks=False),
        )

    def _start_timers(self) -> None:
        cfg = self._config
        self._verdict = self.create_guard_condition(self._judge)
        for sensor in MODALITIES:
            self._watchdogs[sensor] = self.create_timer(
                cfg.sensors[sensor].liveness.timeout_s, self._on_watchdog, clock=self._steady
            )
        self._periodic = [
            self.create_timer(1.0 / cfg.heartbeat_hz, self._publish_state, clock=self._steady),
            self.create_timer(1.0 / cfg.diagnostics_hz, self._publish_diagnostics, clock=self._steady),
        ]

    def _stop_timers(self) -> None:
        for timer in (*self._watchdogs.values(), *self._periodic):
            self.destroy_timer(timer)
        self._watchdogs, self._periodic = {}, []
        if self._verdict is not None:
            self.destroy_guard_condition(self._verdict)
            self._verdict = None

    def _stop(self) -> None:
        for subscription in self._subscriptions_by_sensor.values():
            self.destroy_subscription(subscription)
        self._subscriptions_by_sensor = {}
        self._stop_timers()

    def _release(self) -> None:
        for publisher in (self._state_pub, self._diag_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._state_pub = self._diag_pub = None
        self._config = None

    # --- callbacks -------------------------------------------------------------------------
    def _arrival(self, info) -> tuple[float, int]:
        """When a message reached this process, on time.monotonic() and in ROS-clock ns. Handling can
        come later (this process busy); that delay must neither age the stamp nor shift liveness."""
        waited_ns = min(max(0, time.time_ns() - info["received_timestamp"]), MAX_WAIT_NS)
        return time.monotonic() - waited_ns * 1e-9, self.get_clock().now().nanoseconds - waited_ns

    def _on_sensor_message(self, sensor: str, read, msg, info) -> None:
        now, now_ros_ns = self._arrival(info)
        stamps = self._stamp_checks[sensor]
        problem = stamps.problem(msg.header.stamp, now_ros_ns)
        if problem is None:
            try:
                read(msg)
            except InvalidInput as error:
                problem = str(error)
            except Exception as error:  # noqa: BLE001 - no message may take the monitor down
                problem = f"unreadable message ({type(error).__name__}: {error})"
        tracker = self._trackers[sensor]
        if problem:
            tracker.on_invalid(now, problem)
            self.get_logger().warning(f"{sensor}: invalid message: {problem}", throttle_duration_sec=1.0)
            return
        stamps.accept(msg.header.stamp)
        self._frame_ids[sensor] = msg.header.frame_id
        self._watchdogs[sensor].reset()
        if tracker.on_valid(now):
            self._publish_state()

    def _on_watchdog(self) -> None:
        # Judged one executor cycle later: within a cycle rclpy runs timers before subscriptions,
        # so after this process stalls, a message that did arrive in time would count as missing.
        self._verdict.trigger()

    def _on_deadline(self, _info) -> None:
        self._verdict.trigger()

    def _judge(self) -> None:
        now = time.monotonic()
        died = [sensor for sensor, tracker in self._trackers.items() if tracker.update(now)]
        for sensor, tracker in self._trackers.items():
            if not tracker.alive:
                self._watchdogs[sensor].cancel()  # re-armed by the next valid message
        if died:
            self._publish_state()

    def _on_incompatible_qos(self, sensor: str, info) -> None:
        self._qos_problems[sensor] = f"a publisher has incompatible QoS (policy {info.last_policy_kind.name})"
        self.get_logger().warning(f"{sensor}: {self._qos_problems[sensor]}")

    def _on_battery(self, msg: BatteryState, info) -> None:
        reading = self._battery.on_message(
            self._arrival(info)[0], msg.percentage, msg.charge, msg.capacity, msg.power_supply_status
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
        self._power_level = self._power.update(snapshot.percentage, snapshot.charging)
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
            topic = self._subscriptions_by_sensor[sensor].topic_name
            statuses.append(diagnostics.sensor_status(
                sensor, self._frame_ids[sensor] or topic, topic, tracker, now, cfg.sensors[sensor].expectation,
                self._qos_problems[sensor],
            ))
        battery_topic = self._subscriptions_by_sensor["battery"].topic_name
        statuses.append(diagnostics.battery_status(
            self._frame_ids["battery"] or battery_topic, battery_topic, self._battery.snapshot(now),
            self._power_level, self._power.budget(self._power_level), self._battery.ignored,
        ))
        msg = DiagnosticArray(status=statuses)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(HeartbeatMonitor, args)


if __name__ == "__main__":
    sys.exit(main())
