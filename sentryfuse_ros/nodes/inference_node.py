"""inference_node: SentryGate-pruned SentryAttend predictions for the sensors that are alive.

Lifecycle: configure loads and checks the weights and gate and builds the plan cache; activate
subscribes the sensors and ModalityState and starts the tick; deactivate stops them and frees
the cached plans and sensor windows; cleanup drops the model.

A tick runs as soon as a valid sensor message arrives and the previous tick is at least
1/rate_hz old (the message triggers a guard condition that wakes the tick's callback group),
so every prediction is made on fresh data without waiting for a free-running timer. Each tick
takes the live modality set and power level from ModalityState (or, when the monitor is silent, judges
freshness itself), picks the cached plan for exactly that situation, runs it on the newest
stamp-aligned sensor windows and publishes a Prediction whose header is the newest source stamp
and frame.

Executor: single-threaded (nodes/lifecycle.run_node). Under rclpy's MultiThreadedExecutor this
node's dispatch thread spun at 93% of a core, starving the sensor callbacks and stretching a
5 ms tick to 40 ms (`sentryfuse bench ros`). A tick (preprocessing and a pruned forward, a few
ms) is short enough that parameter services and sensor callbacks wait at most that long, and
sensor subscriptions are depth 1, so the newest data wins. The tick and the sensors still have
their own callback groups and share the windows under a lock, so the node stays correct in a
multi-threaded component container.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import Image, Imu

from sentryfuse.msg import AudioChunk, ModalityState, Prediction
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.modalities import CLASS_NAMES, MODALITIES, MODALITY_SUBSETS
from sentryfuse_ros.model.checkpoint import CheckpointError, _sha256, checkpoint_paths, load_checkpoint, shipped_checkpoint
from sentryfuse_ros.model.gate_checkpoint import load_gate, shipped_gate
from sentryfuse_ros.nodes.decode import audio_from_msg, image_from_msg, imu_sample_from_msg
from sentryfuse_ros.nodes.diagnostics import NAME_PREFIX, OK, WARN
from sentryfuse_ros.nodes.inference_params import AUTO_RATIO, MODEL_PARAMS, PARAMS, TOPIC_PARAMS
from sentryfuse_ros.nodes.lifecycle import SentryLifecycleNode, run_node
from sentryfuse_ros.nodes.qos import latched_state_qos, sensor_qos
from sentryfuse_ros.nodes.sensor_windows import SensorWindows
from sentryfuse_ros.nodes.stamps import StampCheck, StampLimits, ns_to_stamp, stamp_to_ns
from sentryfuse_ros.pruning.plan_cache import PlanCache

UNKNOWN_POWER_LEVEL = ModalityState.POWER_NORMAL  # no ModalityState yet: assume normal power


def load_models(weights_path: str, gate_path: str) -> PlanCache:
    """A plan cache for these weights and the gate trained for them; CheckpointError if unusable."""
    weights = Path(weights_path) if weights_path else shipped_checkpoint()
    gate_file = Path(gate_path) if gate_path else shipped_gate()
    backbone = load_checkpoint(weights).model
    gate = load_gate(gate_file, expected_backbone_sha256=_sha256(checkpoint_paths(weights)[0])).gate
    return PlanCache(backbone, gate)


class InferenceNode(SentryLifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("inference_node", PARAMS, **kwargs)
        self._sensor_group = MutuallyExclusiveCallbackGroup()
        self._tick_group = MutuallyExclusiveCallbackGroup()
        self._lock = threading.Lock()  # sensor callbacks write the windows the tick reads (multi-threaded hosts)
        self._windows = SensorWindows()
        self._loaded: dict[tuple[str, str], PlanCache | str] = {}  # validated model loads (or the error)
        self._cache: PlanCache | None = None
        self._values: dict = {}
        self._subscriptions_by_topic: dict[str, object] = {}
        self._own_timers: list = []
        self._tick_trigger = None  # guard condition the sensor callbacks trigger
        self._next_tick_due = 0.0  # monotonic time before which new data does not trigger a tick
        self._prediction_pub = self._diag_pub = None
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        self._windows.clear()
        self._stamp_checks = {name: StampCheck(StampLimits()) for name in MODALITIES}
        self._last_valid = {name: None for name in MODALITIES}  # monotonic time of the last valid message
        self._state: ModalityState | None = None
        self._state_received = 0.0
        self._invalid = Counter()
        self._last_invalid_reason: dict[str, str] = {}
        self._last_prediction: Prediction | None = None

    # --- parameters ------------------------------------------------------------------------
    def cross_check(self, values) -> str | None:
        cache = self._models_for(values["weights_path"], values["gate_path"])
        return cache if isinstance(cache, str) else None

    def _models_for(self, weights_path: str, gate_path: str) -> PlanCache | str:
        """Load (once per path pair) and validate; the error text if the files are unusable."""
        key = (weights_path, gate_path)
        if key not in self._loaded:
            try:
                self._loaded[key] = load_models(weights_path, gate_path)
            except CheckpointError as error:
                self._loaded[key] = str(error)
        return self._loaded[key]

    def on_parameters_changed(self, values) -> None:
        previous, self._values = self._values, values
        if self._cache is None:  # unconfigured: everything is read at configure
            return
        torch.set_num_threads(values["num_threads"])
        if any(values[name] != previous.get(name) for name in MODEL_PARAMS):
            self._use_models(values)
        if self._subscriptions_by_topic and any(values[name] != previous.get(name) for name in TOPIC_PARAMS):
            self._unsubscribe()
            self._subscribe()
        if self._own_timers and values["diagnostics_hz"] != previous.get("diagnostics_hz"):
            self._stop_timers()
            self._start_timers()
        if values["prediction_topic"] != previous.get("prediction_topic"):
            self.destroy_lifecycle_publisher(self._prediction_pub)
            self._prediction_pub = self.create_lifecycle_publisher(Prediction, values["prediction_topic"], 10)
            if self._own_timers:
                self._prediction_pub.on_activate(None)
        self.get_logger().info(f"parameters applied: prune_ratio={values['prune_ratio']:g} rate_hz={values['rate_hz']:g}")

    def _use_models(self, values) -> None:
        self._cache = self._models_for(values["weights_path"], values["gate_path"])
        self._loaded = {(values["weights_path"], values["gate_path"]): self._cache}  # drop other loads
        if values["prebuild_plans"]:
            ratios = sorted({*values["ratio_policy"], *([values["prune_ratio"]] if values["prune_ratio"] >= 0 else [])})
            plans = self._cache.prebuild(MODALITY_SUBSETS, ratios)
            slowest = max(plan.build_ms for plan in plans)
            self.get_logger().info(
                f"built {len(plans)} plans (slowest {slowest:.1f} ms), {self._cache.memory_bytes() / 1e6:.2f} MB of weights"
            )

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        values = self.checked_parameters()
        if values is None:
            return TransitionCallbackReturn.FAILURE
        self._values = values
        torch.set_num_threads(values["num_threads"])
        self._use_models(values)
        self._prediction_pub = self.create_lifecycle_publisher(Prediction, values["prediction_topic"], 10)
        self._diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        if self._cache is None or isinstance(self._cache, str):
            return TransitionCallbackReturn.FAILURE
        if not self._cache.plans() and self._values["prebuild_plans"]:
            self._use_models(self._values)  # deactivate freed them
        self._reset_runtime_state()
        self._subscribe()
        self._start_timers()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_timers()
        with self._lock:
            self._reset_runtime_state()
        self._cache.clear()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        for publisher in (self._prediction_pub, self._diag_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._prediction_pub = self._diag_pub = None
        self._cache = None
        self._loaded.clear()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_timers()
        return TransitionCallbackReturn.SUCCESS

    def _subscribe(self) -> None:
        qos = sensor_qos(self._values["reliability"])
        readers = {
            "camera": (Image, self._read_image),
            "imu": (Imu, self._read_imu),
            "audio": (AudioChunk, self._read_audio),
        }
        for name, (message_type, read) in readers.items():
            topic = self._values[f"{name}.topic"]
            self._subscriptions_by_topic[name] = self.create_subscription(
                message_type, topic, lambda msg, n=name, r=read: self._on_sensor(n, r, msg), qos,
                callback_group=self._sensor_group,
            )
        self._subscriptions_by_topic["state"] = self.create_subscription(
            ModalityState, self._values["state_topic"], self._on_state, latched_state_qos(),
            callback_group=self._sensor_group,
        )

    def _unsubscribe(self) -> None:
        for subscription in self._subscriptions_by_topic.values():
            self.destroy_subscription(subscription)
        self._subscriptions_by_topic = {}

    def _start_timers(self) -> None:
        self._tick_trigger = self.create_guard_condition(self._on_tick, callback_group=self._tick_group)
        self._own_timers = [self.create_timer(1.0 / self._values["diagnostics_hz"], self._publish_diagnostics)]

    def _stop_timers(self) -> None:
        for timer in self._own_timers:
            self.destroy_timer(timer)
        self._own_timers = []
        if self._tick_trigger is not None:
            self.destroy_guard_condition(self._tick_trigger)
            self._tick_trigger = None

    # --- sensor input ----------------------------------------------------------------------
    def _read_image(self, msg: Image, stamp_ns: int) -> None:
        image = image_from_msg(msg)
        with self._lock:
            self._windows.add_image(stamp_ns, msg.header.frame_id, image)

    def _read_imu(self, msg: Imu, stamp_ns: int) -> None:
        sample = imu_sample_from_msg(msg)
        with self._lock:
            self._windows.add_imu(stamp_ns, msg.header.frame_id, sample)

    def _read_audio(self, msg: AudioChunk, stamp_ns: int) -> None:
        samples = audio_from_msg(msg)
        with self._lock:
            self._windows.add_audio(stamp_ns, msg.header.frame_id, samples, msg.sample_rate)

    def _on_sensor(self, name: str, read, msg) -> None:
        checks = self._stamp_checks[name]
        problem = checks.problem(msg.header.stamp, self.get_clock().now().nanoseconds)
        if problem is None:
            try:
                read(msg, stamp_to_ns(msg.header.stamp))
            except InvalidInput as error:
                problem = str(error)
            except Exception as error:  # noqa: BLE001 - no message may take the node down
                problem = f"unreadable message ({type(error).__name__}: {error})"
        if problem:
            self._invalid[name] += 1
            self._last_invalid_reason[name] = problem
            self.get_logger().warning(f"{name}: dropped invalid message: {problem}", throttle_duration_sec=1.0)
            return
        checks.accept(msg.header.stamp)
        now = self._last_valid[name] = time.monotonic()
        if now >= self._next_tick_due and self._tick_trigger is not None:
            self._tick_trigger.trigger()

    def _on_state(self, msg: ModalityState) -> None:
        self._state, self._state_received = msg, time.monotonic()

    # --- prediction ------------------------------------------------------------------------
    def situation(self, now: float) -> tuple[tuple[str, ...], int, str]:
        """(live modalities, power level, where they came from) for this tick."""
        values = self._values
        if self._state is not None and now - self._state_received <= values["state_timeout_s"]:
            live = tuple(name for name in MODALITIES if name in self._state.live_modalities)
            return live, self._state.power_level, "monitor"
        live = tuple(
            name for name in MODALITIES
            if self._last_valid[name] is not None and now - self._last_valid[name] <= values["fallback_timeout_s"]
        )
        power_level = self._state.power_level if self._state is not None else UNKNOWN_POWER_LEVEL
        return live, power_level, "own freshness check (no recent ModalityState)"

    def ratio_for(self, power_level: int) -> float:
        ratio = self._values["prune_ratio"]
        return ratio if ratio != AUTO_RATIO else self._values["ratio_policy"][power_level]

    def _on_tick(self) -> None:
        started = time.perf_counter()
        now = time.monotonic()
        if now < self._next_tick_due:  # triggered again before the previous tick ran
            return
        self._next_tick_due = now + 1.0 / self._values["rate_hz"]
        live, power_level, source = self.situation(now)
        if not live:
            self.get_logger().warning(f"no live modality ({source}); not predicting", throttle_duration_sec=5.0)
            return
        with self._lock:
            snapshot = self._windows.snapshot(live, self._values["max_skew_s"])
        if snapshot.skipped:
            self.get_logger().info(f"left out: {snapshot.skipped}", throttle_duration_sec=5.0)
        if not snapshot.inputs:
            return
        plan = self._cache.get(tuple(snapshot.inputs), self.ratio_for(power_level))
        with torch.inference_mode():
            scores = plan.model(snapshot.inputs).softmax(dim=-1)[0]
        class_id = int(scores.argmax())
        msg = Prediction(
            label=CLASS_NAMES[class_id], class_id=class_id, confidence=float(scores[class_id]),
            class_scores=scores.tolist(), live_modalities=list(plan.subset), power_level=power_level,
            prune_ratio=plan.ratio, plan_id=plan.plan_id,
            inference_time_ms=(time.perf_counter() - started) * 1e3,
            kept_parameters=plan.kept_parameters, total_parameters=plan.total_parameters,
        )
        msg.header.stamp, msg.header.frame_id = ns_to_stamp(snapshot.stamp_ns), snapshot.frame_id
        self._prediction_pub.publish(msg)
        self._last_prediction = msg

    def _publish_diagnostics(self) -> None:
        last = self._last_prediction
        invalid = sum(self._invalid.values())
        status = DiagnosticStatus(
            level=bytes([WARN if invalid else OK]),
            name=NAME_PREFIX + "inference",
            hardware_id=self.get_fully_qualified_name(),
            message=f"{invalid} invalid sensor messages dropped" if invalid else "predicting",
        )
        status.values = [KeyValue(key=f"{name} invalid", value=str(self._invalid[name])) for name in MODALITIES]
        status.values += [KeyValue(key=f"{name} last invalid", value=reason) for name, reason in self._last_invalid_reason.items()]
        if last is not None:
            status.values += [
                KeyValue(key="plan", value=last.plan_id),
                KeyValue(key="inference ms", value=f"{last.inference_time_ms:.2f}"),
            ]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run_node(InferenceNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
