"""base_station: the unpruned (or a larger) SentryAttend on another machine, answering the robots'
offload requests over DDS.

A robot's inference_node publishes its own pruned prediction at once and, when the power policy
allows offload and the prediction is not confident enough, the preprocessed inputs it used
(OffloadRequest). The base station runs its model on them and answers with a Prediction (origin
remote) carrying the request's source stamp and frame; the robot republishes it as superseding its
local one if it arrives within the robot's deadline (nodes/offload_link.py). A heartbeat
(BaseStationStatus, with the task its model serves) tells robots that the link is up.

Lifecycle: configure loads the weights (and gate, for prune_ratio > 0) and builds a plan per
modality subset; activate subscribes the requests and starts the heartbeat; deactivate stops
them. Started by bringup with `role:=base_station`, on the base station's machine.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.lifecycle import TransitionCallbackReturn

from sentryfuse.msg import BaseStationStatus, OffloadRequest, Prediction
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.data.spec import describe_task, spec_fingerprint
from sentryfuse_ros.model.checkpoint import CheckpointError, backbone_sha256, shipped_checkpoint
from sentryfuse_ros.modalities import subsets_of
from sentryfuse_ros.nodes.base_station_params import PARAMS
from sentryfuse_ros.nodes.diagnostics import OK, WARN, make_status
from sentryfuse_ros.nodes.lifecycle import SentryLifecycleNode, run_node
from sentryfuse_ros.nodes.offload_codec import decode_inputs
from sentryfuse_ros.nodes.qos import offload_qos, reliable_qos
from sentryfuse_ros.pruning.plan_cache import PlanCache, load_plan_cache

# Every QoS event handler is one more entity for the executor; these need none.
_QUIET_PUBLISHER = PublisherEventCallbacks(use_default_callbacks=False)
_QUIET_SUBSCRIPTION = SubscriptionEventCallbacks(use_default_callbacks=False)


class BaseStation(SentryLifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("base_station", PARAMS, **kwargs)
        self._values: dict = {}
        self._cache: PlanCache | None = None
        self._task = ""
        self._model_name = ""
        self._request_subscription = None
        self._timers: list = []
        self._reply_pub = self._status_pub = self._diag_pub = None
        self._counts: Counter[str] = Counter()
        self._last_refusal = ""
        self._answer_ms: list[float] = []

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        values = self.checked_parameters()
        if values is None:
            return TransitionCallbackReturn.FAILURE
        torch.set_num_threads(values["num_threads"])
        try:
            cache = load_plan_cache(values["weights_path"], values["gate_path"], values["runtime"],
                                    values["num_threads"], prunes=values["prune_ratio"] > 0)
        except CheckpointError as error:
            self.get_logger().error(f"cannot serve: {error}")
            return TransitionCallbackReturn.FAILURE
        self._values, self._cache = values, cache
        spec = cache.backbone.config.input
        self._task = spec_fingerprint(spec)
        weights = Path(values["weights_path"]) if values["weights_path"] else shipped_checkpoint()
        self._model_name = f"{weights.name} {backbone_sha256(weights)[:12]}"
        plans = cache.prebuild(subsets_of(spec.modalities), [values["prune_ratio"]])
        self.get_logger().info(f"serving task {self._task} ({describe_task(spec)}): {len(plans)} plans at ratio "
                               f"{values['prune_ratio']:.2f}, {cache.memory_bytes() / 1e6:.2f} MB of weights")
        self._reply_pub = self.create_lifecycle_publisher(
            Prediction, values["reply_topic"], offload_qos(), event_callbacks=_QUIET_PUBLISHER)
        self._status_pub = self.create_lifecycle_publisher(
            BaseStationStatus, values["status_topic"], offload_qos(), event_callbacks=_QUIET_PUBLISHER)
        self._diag_pub = self.create_lifecycle_publisher(
            DiagnosticArray, "/diagnostics", reliable_qos(10), event_callbacks=_QUIET_PUBLISHER)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._counts.clear()
        self._answer_ms.clear()
        self._request_subscription = self.create_subscription(
            OffloadRequest, self._values["request_topic"], self._on_request, offload_qos(),
            event_callbacks=_QUIET_SUBSCRIPTION)
        self._timers = [self.create_timer(1.0 / self._values["heartbeat_hz"], self._publish_status),
                        self.create_timer(1.0 / self._values["diagnostics_hz"], self._publish_diagnostics)]
        return super().on_activate(state)

    def _stop(self) -> None:
        if self._request_subscription is not None:
            self.destroy_subscription(self._request_subscription)
            self._request_subscription = None
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []

    def _release(self) -> None:
        self.destroy_lifecycle_publishers((self._reply_pub, self._status_pub, self._diag_pub))
        self._reply_pub = self._status_pub = self._diag_pub = None
        self._cache = None

    # --- requests --------------------------------------------------------------------------
    def _on_request(self, request: OffloadRequest) -> None:
        started = time.perf_counter()
        spec = self._cache.backbone.config.input
        if request.task != self._task:
            self._refuse(f"request for task {request.task!r}; this base station serves {self._task}")
            return
        try:
            inputs = decode_inputs(request.inputs, spec)
        except InvalidInput as error:
            self._refuse(f"unusable request: {error}")
            return
        except Exception as error:  # noqa: BLE001 - no request may take the base station down
            self._refuse(f"unreadable request ({type(error).__name__}: {error})")
            return
        plan = self._cache.get(tuple(inputs), self._values["prune_ratio"])
        with torch.inference_mode():
            scores = plan.forward(inputs).softmax(dim=-1)[0]
        class_id = int(scores.argmax())
        elapsed_ms = (time.perf_counter() - started) * 1e3
        answer = Prediction(
            header=request.header, label=spec.class_names[class_id], class_id=class_id,
            confidence=float(scores[class_id]), class_scores=scores.tolist(), used_modalities=list(plan.subset),
            prune_ratio=plan.ratio, plan_id=plan.plan_id, inference_time_ms=elapsed_ms,
            kept_parameters=plan.kept_parameters, total_parameters=plan.total_parameters,
            origin=Prediction.ORIGIN_REMOTE,
        )
        self._reply_pub.publish(answer)
        self._counts["answered"] += 1
        self._answer_ms.append(elapsed_ms)
        del self._answer_ms[:-200]

    def _refuse(self, reason: str) -> None:
        self._counts["refused"] += 1
        self._last_refusal = reason
        self.get_logger().warning(f"refused: {reason}", throttle_duration_sec=5.0)

    # --- status ----------------------------------------------------------------------------
    def _publish_status(self) -> None:
        status = BaseStationStatus(task=self._task, model=self._model_name, answered=self._counts["answered"],
                                   refused=self._counts["refused"])
        status.header.stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(status)

    def _publish_diagnostics(self) -> None:
        values: dict[str, object] = {"task": self._task, "model": self._model_name,
                                     "prune_ratio": self._values["prune_ratio"], **self._counts}
        if self._answer_ms:
            values["answer ms, median of recent"] = sorted(self._answer_ms)[len(self._answer_ms) // 2]
        if self._last_refusal:
            values["last refusal"] = self._last_refusal
        refused = self._counts["refused"]
        message = f"{refused} requests refused; last: {self._last_refusal}" if refused else "serving"
        status = make_status("base station", self.get_fully_qualified_name(), WARN if refused else OK, message, values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run_node(BaseStation, args)


if __name__ == "__main__":
    raise SystemExit(main())
