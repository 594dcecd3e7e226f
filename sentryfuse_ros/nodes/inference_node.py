"""inference_node: SentryGate-pruned SentryAttend predictions for the sensors that are alive.

Lifecycle: configure loads and checks the weights and gate and builds the plan cache; activate
subscribes the sensors and ModalityState and starts the tick; deactivate stops them and frees
the cached plans and sensor windows; cleanup drops the model.

The power policy (nodes/power_policy.py) sets, per power level, the prune ratio, the tick rate,
the trigger and the modalities not consumed; each tick applies the level and live set it sees
(within one tick of a change). A tick timer runs at the level's rate_hz. Sensor messages are not handled one by one: they wait in the
middleware's queues (nodes/sensor_feed.py, `ingestion: polled`) and each tick takes everything
queued, then waits up to fresh_wait_s for the next message so that the prediction is made on data
that just arrived, and predicts only if something new arrived since the last prediction (trigger
`rate`), or only if the change detector saw the scene change or the plan changed (trigger
`change`; nothing is published in between). A shed modality is unsubscribed. The
camera is decoded only for the newest frame and only when the camera is used. Each tick takes
the live modality set and power level from ModalityState (or, when the monitor is silent, judges
freshness itself), picks the cached plan for exactly that situation, runs it on the newest
stamp-aligned sensor windows and publishes a Prediction whose header is the newest source stamp
and frame.

Offload (nodes/offload_link.py): at a level whose policy allows it, a prediction less confident
than offload.confidence_threshold also goes to a base station (nodes/base_station.py) as its
model inputs, while the base station's heartbeat is heard; the answer is republished (origin
remote, same header) if it comes within offload.deadline_s and before the next local prediction.

Executor (nodes/lifecycle.run_nodes): single-threaded or rclpy's EventsExecutor (`executor`);
with polled ingestion it wakes about rate_hz + 3 times a second instead of once per message. The tick and the ModalityState
subscription have their own callback groups and the windows are shared under a lock, so the
node stays correct in a multi-threaded container.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import Image, Imu

from sentryfuse.msg import AudioChunk, BaseStationStatus, ModalityState, OffloadRequest, Prediction
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.data.spec import describe_task, spec_fingerprint
from sentryfuse_ros.modalities import MODALITIES, subsets_of
from sentryfuse_ros.model.checkpoint import CheckpointError
from sentryfuse_ros.nodes.cpu_account import CpuAccount
from sentryfuse_ros.nodes.decode import audio_from_msg, imu_sample_from_msg
from sentryfuse_ros.nodes.diagnostics import OK, WARN, make_status
from sentryfuse_ros.nodes.inference_params import (AUTO_DEPTH_RATES_HZ, MODEL_PARAMS, PARAMS, TOPIC_PARAMS,
                                                   change_thresholds)
from sentryfuse_ros.nodes.lifecycle import SentryLifecycleNode, run_node
from sentryfuse_ros.nodes.offload_codec import encode_inputs
from sentryfuse_ros.nodes.offload_link import OffloadConfig, OffloadLink
from sentryfuse_ros.nodes.power_policy import PowerPolicy, policy_problem
from sentryfuse_ros.nodes.prediction_loop import LoopConfig, PredictionLoop
from sentryfuse_ros.nodes.qos import latched_state_qos, offload_qos, reliable_qos, sensor_qos
from sentryfuse_ros.nodes.sensor_feed import Delivery, ingestion_problem
from sentryfuse_ros.nodes.stamps import StampCheck, StampLimits, ns_to_stamp, stamp_to_ns
from sentryfuse_ros.pruning.plan_cache import PlanCache, load_plan_cache

UNKNOWN_POWER_LEVEL = ModalityState.POWER_NORMAL  # no ModalityState yet: assume normal power
SENSOR_TYPES = {"camera": Image, "imu": Imu, "audio": AudioChunk}


def queue_depth(values, sensor: str) -> int:
    """The sensor's queue depth: as set, or (0, IMU and audio only) two periods of the slowest
    level's prediction rate of the fastest stream, so no level change needs a deeper queue."""
    depth = values[f"{sensor}.queue_depth"]
    if depth:
        return depth
    return max(1, math.ceil(2 * AUTO_DEPTH_RATES_HZ[sensor] / PowerPolicy.from_values(values).slowest_rate_hz()))


class InferenceNode(SentryLifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("inference_node", PARAMS, **kwargs)
        self._state_group = MutuallyExclusiveCallbackGroup()
        self._tick_group = MutuallyExclusiveCallbackGroup()
        self._lock = threading.Lock()  # sensor deliveries write what the tick reads (multi-threaded hosts)
        self._cpu = CpuAccount()
        self._loop = PredictionLoop(LoopConfig(), self._reject_frame, self._cpu)  # windows, change detector, trigger
        self._loaded: dict[tuple[str, str], PlanCache | str] = {}  # validated model loads (or the error)
        self._cache: PlanCache | None = None
        self._pending_cache: PlanCache | None = None  # built by a reload, used from the next tick
        self._reload: threading.Thread | None = None
        self._values: dict = {}
        self._policy: PowerPolicy | None = None
        self._consumed: tuple[str, ...] = MODALITIES  # what is subscribed: the live set minus what the level sheds
        self._feed = None
        self._sensor_subscriptions: dict[str, object] = {}
        self._state_subscription = None
        self._offload_subscriptions: list = []  # base station answers and heartbeats, while the policy offloads
        self._own_timers: list = []
        self._tick_timer = None
        self._prediction_pub = self._diag_pub = self._request_pub = None
        self._offload = OffloadLink(OffloadConfig(), task="")
        self._link_state = ""
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        self._loop.clear()
        self._stamp_checks = {name: StampCheck(StampLimits()) for name in MODALITIES}
        self._last_valid = {name: None for name in MODALITIES}  # monotonic arrival of the last valid message
        self._imu_batch: list[tuple[int, np.ndarray]] = []  # valid rows of the batch being taken
        self._imu_frame = ""
        self._new_data = False  # a valid message arrived since the last prediction
        self._state: ModalityState | None = None
        self._state_received = 0.0
        self._invalid = Counter()
        self._last_invalid_reason: dict[str, str] = {}
        self._last_prediction: Prediction | None = None
        self._applied: tuple | None = None  # (power level, live) the policy was last applied for
        self._predictions = 0
        self._ticks = 0
        self._runtime = ""
        self._cpu.clear()
        self._offload = OffloadLink(self._offload.config, self._offload.task)
        self._link_state = ""

    # --- parameters ------------------------------------------------------------------------
    def cross_check(self, values) -> str | None:
        problem = ingestion_problem(values) or policy_problem(values) or change_thresholds(values).problem()
        if problem:
            return problem
        cache = self._models_for(values)
        return cache if isinstance(cache, str) else None

    def _models_for(self, values) -> PlanCache | str:
        """Load (once per MODEL_PARAMS values) and validate; the error text if the files are unusable.
        A failure is not remembered: the same path is read again next time (the file may be there now)."""
        key = tuple(values[name] for name in MODEL_PARAMS)
        if key not in self._loaded:
            try:
                self._loaded[key] = load_plan_cache(*key)
            except CheckpointError as error:
                return str(error)
        return self._loaded[key]

    def on_parameters_changed(self, values) -> None:
        previous, self._values = self._values, values
        if self._cache is None:  # unconfigured: everything is read at configure
            return
        torch.set_num_threads(values["num_threads"])
        self._offload.config = OffloadConfig.from_values(values)
        old_policy, self._policy = self._policy, PowerPolicy.from_values(values)
        self._loop.reconfigure(LoopConfig.from_values(values, change_thresholds(values)))
        new_ratios = old_policy is None or old_policy.planned_ratios() != self._policy.planned_ratios()
        if any(values[name] != previous.get(name) for name in MODEL_PARAMS) or (new_ratios and values["prebuild_plans"]):
            self._reload_in_background(values)  # a new ratio's plans too: a build takes ~0.15 s with ONNX Runtime
        active = bool(self._own_timers)
        resubscribe = any(values[name] != previous.get(name) for name in TOPIC_PARAMS) or any(
            queue_depth(values, s) != queue_depth(previous, s) for s in SENSOR_TYPES) or (
            old_policy is not None and old_policy.offloads() != self._policy.offloads())
        if active and resubscribe:
            self._stop_timers()
            self._unsubscribe()
            self._subscribe()
            self._start_timers()
        self._applied = None  # the next tick applies the policy (rate, shedding) anew
        if values["prediction_topic"] != previous.get("prediction_topic"):
            self.destroy_lifecycle_publisher(self._prediction_pub)
            self._prediction_pub = self._make_prediction_publisher()
            if active:
                self._prediction_pub.on_activate(None)
        if values["offload.request_topic"] != previous.get("offload.request_topic"):
            self.destroy_lifecycle_publisher(self._request_pub)
            self._request_pub = self._make_request_publisher()
            if active:
                self._request_pub.on_activate(None)
        self.get_logger().info(f"parameters applied: {self._policy}")

    def _use_models(self, values) -> None:
        self._cache = self._prepared_models(values)
        self._use_task(self._cache)

    def _use_task(self, cache: PlanCache) -> None:
        """Cut windows, read sensors and name classes as this model's task says (its checkpoint's spec)."""
        spec, task = cache.backbone.config.input, spec_fingerprint(cache.backbone.config.input)
        if task != self._offload.task:
            self.get_logger().info(f"model task {task}: {describe_task(spec)}")
        self._loop.use_spec(spec)
        self._offload.task = task  # a base station serving another task is not used

    def _prepared_models(self, values) -> PlanCache:
        """The validated models for these values (cross_check loaded them), plans built."""
        cache = self._models_for(values)
        self._loaded = {tuple(values[name] for name in MODEL_PARAMS): cache}  # drop other loads
        if values["prebuild_plans"]:
            ratios = PowerPolicy.from_values(values).planned_ratios()
            plans = cache.prebuild(subsets_of(cache.backbone.config.modalities), ratios)
            slowest = max(plan.build_ms for plan in plans)
            self.get_logger().info(
                f"built {len(plans)} plans (slowest {slowest:.1f} ms), {cache.memory_bytes() / 1e6:.2f} MB of weights"
            )
        return cache

    def _reload_in_background(self, values) -> None:
        """Build the new model's plans off the executor thread (seconds, with a compiled runtime);
        the tick keeps predicting with the old plans and switches once the new ones are ready."""
        def build() -> None:
            self._pending_cache = self._prepared_models(values)

        self._reload = threading.Thread(target=build, name="inference_node reload", daemon=True)
        self._reload.start()

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        values = self.checked_parameters()
        if values is None:
            return TransitionCallbackReturn.FAILURE
        self._values, self._policy = values, PowerPolicy.from_values(values)
        self._offload.config = OffloadConfig.from_values(values)
        self._loop.reconfigure(LoopConfig.from_values(values, change_thresholds(values)))
        torch.set_num_threads(values["num_threads"])
        self._use_models(values)
        self._prediction_pub = self._make_prediction_publisher()
        self._request_pub = self._make_request_publisher()
        self._diag_pub = self.create_lifecycle_publisher(
            DiagnosticArray, "/diagnostics", reliable_qos(10), event_callbacks=_QUIET_PUBLISHER)
        return TransitionCallbackReturn.SUCCESS

    def _make_prediction_publisher(self):
        return self.create_lifecycle_publisher(
            Prediction, self._values["prediction_topic"], reliable_qos(10), event_callbacks=_QUIET_PUBLISHER)

    def _make_request_publisher(self):
        return self.create_lifecycle_publisher(
            OffloadRequest, self._values["offload.request_topic"], offload_qos(), event_callbacks=_QUIET_PUBLISHER)

    def on_activate(self, state) -> TransitionCallbackReturn:
        if self._cache is None or isinstance(self._cache, str):
            return TransitionCallbackReturn.FAILURE
        if not self._cache.plans() and self._values["prebuild_plans"]:
            self._use_models(self._values)  # deactivate freed them
        self._reset_runtime_state()
        self._consumed = self._consumable(UNKNOWN_POWER_LEVEL, ())
        self._subscribe()
        self._start_timers()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)  # _stop: subscriptions and timers
        with self._lock:
            self._reset_runtime_state()
        self._cache.clear()
        return result

    def _stop(self) -> None:
        self._unsubscribe()
        self._stop_timers()

    def _release(self) -> None:
        self.destroy_lifecycle_publishers((self._prediction_pub, self._diag_pub, self._request_pub))
        self._prediction_pub = self._diag_pub = self._request_pub = None
        self._cache = None
        self._loaded.clear()

    def destroy_node(self) -> None:
        if self._reload is not None:
            self._reload.join()  # a plan build must not outlive the node (or the interpreter)
        super().destroy_node()

    def _subscribe(self) -> None:
        values = self._values
        self._feed = self.feeds.get(values["ingestion"])
        for name in self._consumed:
            self._subscribe_sensor(name)
        self._state_subscription = self.create_subscription(
            ModalityState, values["state_topic"], self._on_state, latched_state_qos(),
            callback_group=self._state_group,
            event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False),
        )
        if self._policy.offloads():
            self._offload_subscriptions = [
                self.create_subscription(
                    message_type, values[topic], callback, offload_qos(), callback_group=self._state_group,
                    event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
                for message_type, topic, callback in (
                    (BaseStationStatus, "offload.status_topic", self._on_base_status),
                    (Prediction, "offload.reply_topic", self._on_answer))]

    def _subscribe_sensor(self, name: str) -> None:
        values = self._values
        qos = sensor_qos(values["reliability"], depth=queue_depth(values, name))
        self._sensor_subscriptions[name] = self._feed.subscribe(
            self, SENSOR_TYPES[name], values[f"{name}.topic"], qos, lambda deliveries: self._on_sensor(name, deliveries))

    def _unsubscribe(self) -> None:
        for subscription in self._sensor_subscriptions.values():
            self._feed.unsubscribe(subscription)
        self._sensor_subscriptions = {}
        if self._state_subscription is not None:
            self.destroy_subscription(self._state_subscription)
            self._state_subscription = None
        for subscription in self._offload_subscriptions:
            self.destroy_subscription(subscription)
        self._offload_subscriptions = []

    def _start_timers(self) -> None:
        level = self._applied[0] if self._applied else UNKNOWN_POWER_LEVEL
        self._tick_timer = self.create_timer(
            1.0 / self._policy.at(level).rate_hz, self._on_tick, callback_group=self._tick_group)
        self._own_timers = [self._tick_timer,
                            self.create_timer(1.0 / self._values["diagnostics_hz"], self._publish_diagnostics)]

    def _stop_timers(self) -> None:
        for timer in self._own_timers:
            self.destroy_timer(timer)
        self._own_timers, self._tick_timer = [], None

    # --- power policy ----------------------------------------------------------------------
    def _apply_policy(self, power_level: int, live: tuple[str, ...]) -> None:
        """The level's tick rate, and its subscriptions: shed modalities unsubscribed (their
        windows and change references dropped), the others subscribed."""
        if self._applied == (power_level, live):
            return
        self._applied = (power_level, live)
        self._loop.watch_change(self._policy.at(power_level).trigger == "change")
        period_ns = int(1e9 / self._policy.at(power_level).rate_hz)
        if self._tick_timer is not None and self._tick_timer.timer_period_ns != period_ns:
            self._tick_timer.timer_period_ns = period_ns
            self._tick_timer.reset()
        consumed = self._consumable(power_level, live)
        if consumed == self._consumed:
            return
        with self._lock:
            for name in self._consumed:
                if name not in consumed:
                    self._feed.unsubscribe(self._sensor_subscriptions.pop(name))
                    self._loop.forget(name)
                    self._last_valid[name] = None
            for name in consumed:
                if name not in self._consumed:
                    self._subscribe_sensor(name)
            self._consumed = consumed
        self.get_logger().info(f"consuming [{', '.join(consumed)}] at power level {power_level}")

    def _consumable(self, power_level: int, live: tuple[str, ...]) -> tuple[str, ...]:
        """What to subscribe to: the level's choice among the live modalities the model takes."""
        task = self._loop.spec.modalities
        consumed = self._policy.consumed(power_level, tuple(name for name in live if name in task))
        return tuple(name for name in consumed if name in task)

    # --- sensor input ----------------------------------------------------------------------
    def _on_sensor(self, name: str, deliveries: list[Delivery]) -> None:
        """Messages taken from one sensor's queue, oldest first."""
        started = self._cpu.start()
        now, now_ros_ns = time.monotonic(), self.get_clock().now().nanoseconds
        with self._lock:
            for delivery in deliveries:
                arrival, arrival_ros_ns = delivery.arrival(now, now_ros_ns)
                problem = self._stamp_checks[name].problem(delivery.msg.header.stamp, arrival_ros_ns)
                if problem is None and name != "camera":  # frames are decoded when a prediction uses one
                    problem = self._read(name, delivery.msg)
                if problem:
                    self._reject(name, problem)
                    continue
                self._stamp_checks[name].accept(delivery.msg.header.stamp)
                self._last_valid[name] = arrival
                self._new_data = True
                if name == "camera":
                    self._loop.offer_frame(delivery.msg)
            if self._imu_batch:  # the batch's valid IMU rows go into the window in one go
                stamps, samples = zip(*self._imu_batch)
                self._loop.add_imu(np.array(stamps, np.int64), self._imu_frame, np.stack(samples))
                self._imu_batch.clear()
        self._cpu.add(f"ingest {name}", started)

    def _read(self, name: str, msg) -> str | None:
        """Decode one IMU or audio message into the windows; why it is unusable, or None."""
        try:
            stamp_ns = stamp_to_ns(msg.header.stamp)
            if name == "imu":
                self._imu_batch.append((stamp_ns, imu_sample_from_msg(msg, self._loop.spec.imu_axes)))
                self._imu_frame = msg.header.frame_id
            else:
                self._loop.add_audio(stamp_ns, msg.header.frame_id, audio_from_msg(msg), msg.sample_rate)
        except InvalidInput as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - no message may take the node down
            return f"unreadable message ({type(error).__name__}: {error})"
        return None

    def _reject(self, name: str, problem: str) -> None:
        self._invalid[name] += 1
        self._last_invalid_reason.pop(name, None)  # re-inserted: the newest rejection is last
        self._last_invalid_reason[name] = problem
        self.get_logger().warning(f"{name}: dropped invalid message: {problem}", throttle_duration_sec=1.0)

    def _reject_frame(self, name: str, problem: str) -> None:
        """The newest frame, accepted at ingestion, failed when looked at or decoded."""
        self._reject(name, problem)
        self._last_valid[name] = None  # its newest message was not valid after all

    def _on_state(self, msg: ModalityState) -> None:
        self._state, self._state_received = msg, time.monotonic()

    # --- offload ---------------------------------------------------------------------------
    def _on_base_status(self, msg: BaseStationStatus) -> None:
        with self._lock:
            self._offload.heard(time.monotonic(), msg.task)

    def _offload_if_unsure(self, local: Prediction, snapshot, plan, level, started: float) -> None:
        """Send the local prediction's inputs to the base station if the rule says so (offload_link)."""
        cpu_started = self._cpu.start()
        now = time.monotonic()
        with self._lock:
            self._offload.published_local(now)
            if not self._offload.wants(now, level.offload, local.confidence):
                return
            key = (snapshot.stamp_ns, snapshot.frame_id)
            self._offload.sent(now, key, (local, started))
        request = OffloadRequest(header=local.header, task=self._offload.task, local_class_id=local.class_id,
                                 local_confidence=local.confidence,
                                 inputs=encode_inputs({name: snapshot.inputs[name] for name in plan.subset},
                                                      self._offload.config.encoding))
        self._request_pub.publish(request)
        self._cpu.add("offload", cpu_started)

    def _on_answer(self, answer: Prediction) -> None:
        """A base station's answer: published, superseding the local prediction, if awaited and in time."""
        cpu_started = self._cpu.start()
        n_classes = self._loop.spec.n_classes
        with self._lock:
            awaited = self._offload.answered(time.monotonic(), (stamp_to_ns(answer.header.stamp),
                                                               answer.header.frame_id))
        if awaited is None:
            return
        if not (len(answer.class_scores) == n_classes and 0 <= answer.class_id < n_classes
                and all(math.isfinite(score) for score in answer.class_scores)):
            with self._lock:
                self._offload.counts["unusable answer"] += 1
            self.get_logger().warning(f"offload: answer with {len(answer.class_scores)} scores and class "
                                      f"{answer.class_id} for a task of {n_classes} classes", throttle_duration_sec=5.0)
            return
        local, started = awaited
        msg = Prediction(
            header=answer.header, label=self._loop.spec.class_names[answer.class_id], class_id=answer.class_id,
            confidence=answer.confidence, class_scores=list(answer.class_scores),
            live_modalities=local.live_modalities, used_modalities=answer.used_modalities, trigger=local.trigger,
            power_level=local.power_level, prune_ratio=answer.prune_ratio, plan_id=f"base {answer.plan_id}",
            inference_time_ms=(time.perf_counter() - started) * 1e3, kept_parameters=answer.kept_parameters,
            total_parameters=answer.total_parameters, origin=Prediction.ORIGIN_REMOTE,
        )
        self._prediction_pub.publish(msg)
        self._last_prediction = msg
        self._cpu.add("offload", cpu_started)

    def _watch_link(self) -> None:
        """Log the link's state when it changes (link lost: local predictions only)."""
        if not self._offload_subscriptions:
            return
        with self._lock:
            state = self._offload.poll(time.monotonic())
        if state != self._link_state:
            if self._link_state or state == "up":
                self.get_logger().info(f"base station link: {state}")
            self._link_state = state

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
        return self._policy.at(power_level).prune_ratio

    def _on_tick(self) -> None:
        self._ticks += 1
        if self._pending_cache is not None:
            self._cache, self._pending_cache = self._pending_cache, None
            with self._lock:
                self._use_task(self._cache)
            self._applied = None  # another task may take other modalities
            self.get_logger().info("switched to the reloaded model's plans")
        live, power_level, _ = self.situation(time.monotonic())
        self._apply_policy(power_level, live)
        self._watch_link()
        subscriptions = list(self._sensor_subscriptions.values())
        self._feed.drain(subscriptions)
        if self._feed.wait(self._values["fresh_wait_s"]):  # predict on the message that arrives next
            self._feed.drain(subscriptions)
        if not self._new_data:
            return
        started = time.perf_counter()
        live, power_level, source = self.situation(time.monotonic())
        wanted = tuple(name for name in live if name in self._consumed)
        if not wanted:
            self.get_logger().warning(
                f"no live modality the model takes ({source}: live [{', '.join(live)}], model inputs "
                f"[{', '.join(self._loop.spec.modalities)}]); not predicting", throttle_duration_sec=5.0)
            return
        level = self._policy.at(power_level)
        with self._lock:
            self._new_data = False
            trigger = self._loop.trigger(time.monotonic(), wanted, level)
            if trigger is None:
                return
            snapshot = self._loop.snapshot(wanted)
            if snapshot.inputs:
                self._loop.predicted(tuple(snapshot.inputs))
        if snapshot.skipped:
            self.get_logger().info(f"left out: {snapshot.skipped}", throttle_duration_sec=5.0)
        if not snapshot.inputs:
            return
        cpu_started = self._cpu.start()
        plan = self._cache.get(tuple(snapshot.inputs), level.prune_ratio)
        with torch.inference_mode():
            scores = plan.forward(snapshot.inputs).softmax(dim=-1)[0]
        cpu_started = self._cpu.add("forward", cpu_started)
        class_id = int(scores.argmax())
        msg = Prediction(
            label=self._loop.spec.class_names[class_id], class_id=class_id, confidence=float(scores[class_id]),
            class_scores=scores.tolist(), live_modalities=list(live), used_modalities=list(plan.subset),
            trigger=trigger, power_level=power_level,
            prune_ratio=plan.ratio, plan_id=plan.plan_id,
            inference_time_ms=(time.perf_counter() - started) * 1e3,
            kept_parameters=plan.kept_parameters, total_parameters=plan.total_parameters,
            origin=Prediction.ORIGIN_LOCAL,
        )
        msg.header.stamp, msg.header.frame_id = ns_to_stamp(snapshot.stamp_ns), snapshot.frame_id
        self._prediction_pub.publish(msg)
        self._cpu.add("publish", cpu_started)
        self._last_prediction = msg
        self._predictions += 1
        self._runtime = plan.runtime
        if self._offload_subscriptions:
            self._offload_if_unsure(msg, snapshot, plan, level, started)

    def _publish_diagnostics(self) -> None:
        last = self._last_prediction
        invalid = sum(self._invalid.values())
        values: dict[str, object] = {f"{name} invalid": self._invalid[name] for name in MODALITIES}
        values |= {f"{name} last invalid": reason for name, reason in self._last_invalid_reason.items()}
        level = self._applied[0] if self._applied else UNKNOWN_POWER_LEVEL
        policy = self._policy.at(level)
        spec = self._loop.spec
        values |= {"ticks": self._ticks, "consumed": "+".join(self._consumed), "trigger": policy.trigger,
                   "rate_hz": policy.rate_hz, "model inputs": "+".join(spec.modalities),
                   "classes": ",".join(spec.class_names)}
        if self._state is not None:
            unused = [name for name in self._state.live_modalities if name not in spec.modalities]
            if unused:
                values["live, not a model input"] = "+".join(unused)
        values |= {"predictions": self._predictions, "ingestion": self._values["ingestion"],
                   "executor": self._values["executor"], "runtime": self._runtime}
        values |= {f"cpu_ms {part}": ms for part, ms in self._cpu.milliseconds().items()}
        for name, subscription in self._sensor_subscriptions.items():
            counters = self._feed.topic(subscription).counters
            values |= {f"published {name}": counters.published, f"taken {name}": counters.taken,
                       f"lost {name}": counters.lost}
        if last is not None:
            values |= {"plan": last.plan_id, "inference ms": f"{last.inference_time_ms:.2f}"}
        if self._offload_subscriptions:
            values |= self._offload_values(policy)
        # The newest rejection's reason leads the message: it is what a user reads first.
        newest = next(reversed(self._last_invalid_reason.items()), None)
        summary = f"{invalid} invalid sensor messages dropped; {newest[0]}: {newest[1]}" if newest else "predicting"
        status = make_status("inference", self.get_fully_qualified_name(), WARN if invalid else OK, summary, values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def _offload_values(self, policy) -> dict[str, object]:
        with self._lock:
            link, now = self._offload, time.monotonic()
            values = {"offload link": link.state(now), "offload at this level": policy.offload,
                      "offload in flight": link.in_flight()}
            if link.transitions:
                values["offload link changed, s ago"] = round(now - link.transitions[-1][0], 1)
            values |= {f"offload {what}": count for what, count in link.counts.items()}
            if link.round_trips_ms:
                values["offload round trip ms, median of recent"] = sorted(link.round_trips_ms)[
                    len(link.round_trips_ms) // 2]
        return values


# Every QoS event handler is one more entity for the executor; these publishers need none.
_QUIET_PUBLISHER = PublisherEventCallbacks(use_default_callbacks=False)


def main(args: list[str] | None = None) -> int:
    return run_node(InferenceNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
