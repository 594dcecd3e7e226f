"""base_station in process: the test's own node publishes OffloadRequests like a robot and reads the
answers, heartbeats and diagnostics; one executor spins both nodes."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from conftest import wait_for
from sentryfuse.msg import BaseStationStatus, OffloadRequest, Prediction
from sentryfuse_ros.data.recorded import input_shapes
from sentryfuse_ros.data.spec import spec_fingerprint
from sentryfuse_ros.model.checkpoint import backbone_sha256, checkpoint_paths, load_checkpoint
from sentryfuse_ros.nodes.base_station import BaseStation
from sentryfuse_ros.nodes.diagnostics import NAME_PREFIX
from sentryfuse_ros.nodes.offload_codec import decode_inputs, encode_inputs
from sentryfuse_ros.nodes.qos import offload_qos, reliable_qos
from sentryfuse_ros.nodes.stamps import ns_to_stamp

WAIT_S = 10.0
RESEND_S = 0.5  # best effort: a request sent before discovery completes is lost, so resend


def model_inputs(spec, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn((1, *shape), generator=generator) for name, shape in input_shapes(spec).items()}


def make_request(inputs, task: str, stamp_ns: int, frame_id: str = "test_camera", encoding: str = "float16"):
    request = OffloadRequest(task=task, inputs=encode_inputs(inputs, encoding), local_class_id=0, local_confidence=0.3)
    request.header.stamp = ns_to_stamp(stamp_ns)
    request.header.frame_id = frame_id
    return request


def key_of(message) -> tuple[int, int, str]:
    return message.header.stamp.sec, message.header.stamp.nanosec, message.header.frame_id


class StationRig:
    """A BaseStation on topics of its own, and the test node's ends of them."""

    def __init__(self, node, weights, gate=None, **params):
        prefix = f"/bs_{uuid.uuid4().hex[:10]}"
        self.topics = {name: f"{prefix}/{name}" for name in ("request", "reply", "status")}
        overrides = {"weights_path": str(weights), "runtime": "eager", "heartbeat_hz": 20.0, "diagnostics_hz": 5.0,
                     **{f"{name}_topic": topic for name, topic in self.topics.items()}, **params}
        if gate is not None:
            overrides["gate_path"] = str(gate)
        self.station = BaseStation(parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        self.node = node
        self.publisher = node.create_publisher(OffloadRequest, self.topics["request"], offload_qos())
        self.replies: list[Prediction] = []
        self.statuses: list[BaseStationStatus] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.subscriptions = [
            node.create_subscription(Prediction, self.topics["reply"], self.replies.append, offload_qos()),
            node.create_subscription(BaseStationStatus, self.topics["status"], self.statuses.append, offload_qos()),
            node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, reliable_qos(10)),
        ]
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.station)
        self.executor.add_node(node)

    def start(self) -> None:
        assert self.station.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.station.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.02)

    def wait(self, predicate, timeout: float = WAIT_S) -> bool:
        return wait_for(predicate, timeout, spin=self.spin)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.spin()

    def reply_to(self, request) -> Prediction | None:
        return next((reply for reply in self.replies if key_of(reply) == key_of(request)), None)

    def exchange(self, requests, until, timeout: float = WAIT_S) -> bool:
        """Publish `requests` (in order) every RESEND_S until `until()` holds or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in requests:
                self.publisher.publish(request)
            if wait_for(until, min(RESEND_S, max(0.0, deadline - time.monotonic())), spin=self.spin):
                return True
        return bool(until())

    def ask(self, request, timeout: float = WAIT_S) -> Prediction:
        assert self.exchange([request], lambda: self.reply_to(request) is not None, timeout), \
            f"no answer within {timeout:g} s; last status: {self.statuses[-1:]}"
        return self.reply_to(request)

    def last_status(self) -> BaseStationStatus | None:
        return self.statuses[-1] if self.statuses else None

    def refused(self) -> int:
        return self.last_status().refused if self.statuses else 0

    def answered(self) -> int:
        return self.last_status().answered if self.statuses else 0

    def diagnostic_values(self) -> dict[str, str]:
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == NAME_PREFIX + "base station":
                    return {value.key: value.value for value in status.values}
        return {}

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.executor.shutdown()
        for subscription in self.subscriptions:
            self.node.destroy_subscription(subscription)
        self.node.destroy_publisher(self.publisher)
        self.station.destroy_node()


@pytest.fixture
def station(ros_node, tiny_weights):
    """make(**params) -> a started StationRig serving the tiny weights; all closed afterwards."""
    rigs = []

    def make(weights=None, gate=None, start=True, **params):
        rig = StationRig(ros_node, weights or tiny_weights[0], gate or tiny_weights[1], **params)
        rigs.append(rig)
        if start:
            rig.start()
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture(scope="module")
def reference(tiny_weights):
    """The tiny checkpoint loaded locally: what the base station's answers must equal."""
    return load_checkpoint(tiny_weights[0]).model


def local_scores(model, request) -> torch.Tensor:
    with torch.inference_mode():
        return model(decode_inputs(request.inputs, model.config.input)).softmax(dim=-1)[0]


# --- heartbeat ---------------------------------------------------------------------------------
@pytest.mark.slow  # spins until heartbeats arrive
def test_heartbeat_names_the_task_of_the_model(station, reference, tiny_weights):
    rig = station()
    assert rig.wait(lambda: len(rig.statuses) >= 3), "no heartbeat"
    status = rig.last_status()
    assert status.task == spec_fingerprint(reference.config.input)
    assert status.model.startswith(tiny_weights[0].name)
    assert status.answered == 0 and status.refused == 0
    assert (status.header.stamp.sec, status.header.stamp.nanosec) != (0, 0)


@pytest.mark.slow  # spins until heartbeats arrive
def test_heartbeat_model_carries_the_weights_sha256_prefix(station, tiny_weights):
    rig = station()
    assert rig.wait(lambda: len(rig.statuses) >= 1), "no heartbeat"
    sha = backbone_sha256(tiny_weights[0])
    assert sha[:8] in rig.last_status().model, rig.last_status().model


# --- answers -----------------------------------------------------------------------------------
@pytest.mark.slow  # spins for the DDS round trip
@pytest.mark.parametrize("encoding,runtime", [("float16", "eager"), ("int8", "eager"), ("float16", "auto")])
def test_answer_is_the_models_own_forward_for_the_requests_stamp(station, reference, encoding, runtime):
    spec = reference.config.input
    rig = station(runtime=runtime)  # auto: the default, which may pick ONNX Runtime per plan
    request = make_request(model_inputs(spec, seed=1), spec_fingerprint(spec), 1_700_000_000_123_456_789,
                           "robot_7/camera", encoding)
    answer = rig.ask(request)
    assert key_of(answer) == (1_700_000_000, 123_456_789, "robot_7/camera")
    assert answer.origin == Prediction.ORIGIN_REMOTE == "remote"
    assert len(answer.class_scores) == spec.n_classes == 10
    assert sum(answer.class_scores) == pytest.approx(1.0, abs=1e-4)
    assert list(answer.used_modalities) == [tensor.modality for tensor in request.inputs] == list(spec.modalities)
    expected = local_scores(reference, request)
    torch.testing.assert_close(torch.tensor(list(answer.class_scores)), expected, rtol=0, atol=1e-4)
    assert answer.class_id == int(expected.argmax())
    assert answer.label == spec.class_names[answer.class_id]
    assert answer.confidence == pytest.approx(max(answer.class_scores), abs=1e-6)
    assert answer.prune_ratio == 0.0 and answer.kept_parameters == answer.total_parameters > 0
    assert answer.plan_id == "camera+imu+audio@0.00"
    assert answer.inference_time_ms > 0
    assert rig.wait(lambda: rig.answered() >= 1)
    assert rig.refused() == 0


@pytest.mark.slow  # spins for the DDS round trip
def test_a_subset_of_inputs_is_answered_by_that_subsets_plan(station, reference):
    spec = reference.config.input
    rig = station()
    inputs = model_inputs(spec, seed=2)
    subset = {"audio": inputs["audio"], "imu": inputs["imu"]}  # sent out of canonical order
    request = make_request(subset, spec_fingerprint(spec), 2_000_000_000, "robot_7/imu")
    answer = rig.ask(request)
    assert list(answer.used_modalities) == ["imu", "audio"]
    assert answer.plan_id == "imu+audio@0.00"
    torch.testing.assert_close(torch.tensor(list(answer.class_scores)), local_scores(reference, request),
                               rtol=0, atol=1e-4)
    # Differs from what the full input set gives: the answer really used only these two.
    full = local_scores(reference, make_request(inputs, spec_fingerprint(spec), 1))
    assert not torch.allclose(torch.tensor(list(answer.class_scores)), full, atol=1e-6)


@pytest.mark.slow  # spins for the DDS round trips
def test_each_request_gets_its_own_answer(station, reference):
    spec = reference.config.input
    rig = station()
    requests = [make_request(model_inputs(spec, seed=10 + i), spec_fingerprint(spec), 3_000_000_000 + i, f"f{i}")
                for i in range(4)]
    assert rig.exchange(requests, lambda: all(rig.reply_to(r) is not None for r in requests))
    for request in requests:
        torch.testing.assert_close(torch.tensor(list(rig.reply_to(request).class_scores)),
                                   local_scores(reference, request), rtol=0, atol=1e-4)


@pytest.mark.slow  # configures with the gate and spins for the DDS round trip
def test_a_pruned_base_station_answers_with_its_pruned_plan(station, reference):
    spec = reference.config.input
    rig = station(prune_ratio=0.3)
    answer = rig.ask(make_request(model_inputs(spec), spec_fingerprint(spec), 4_000_000_000))
    assert answer.prune_ratio == pytest.approx(0.3)
    assert answer.plan_id == "camera+imu+audio@0.30"
    assert answer.kept_parameters < answer.total_parameters
    assert sum(answer.class_scores) == pytest.approx(1.0, abs=1e-4)


# --- refusals ----------------------------------------------------------------------------------
def _other_task(request, spec):
    request.task = "0000000000000000"


def _wrong_shape(request, spec):
    request.inputs[0].shape = [1, 1, 28, 27]


def _wrong_bytes(request, spec):
    request.inputs[1].data = bytes(request.inputs[1].data)[:-2]


def _no_inputs(request, spec):
    request.inputs = []


def _unknown_modality(request, spec):
    request.inputs[2].modality = "lidar"


def _nan_value(request, spec):
    request.inputs[0].data = b"\x00\x7e" + bytes(request.inputs[0].data)[2:]  # float16 NaN first


@pytest.mark.slow  # spins for the DDS round trips
@pytest.mark.parametrize("breakage,named", [
    (_other_task, "task"), (_wrong_shape, "shape"), (_wrong_bytes, "bytes"), (_no_inputs, "no input"),
    (_unknown_modality, "lidar"), (_nan_value, "finite"),
], ids=["another task", "wrong shape", "wrong byte count", "no inputs", "unknown modality", "NaN"])
def test_bad_request_is_refused_counted_and_named(station, reference, breakage, named):
    spec = reference.config.input
    rig = station()
    task = spec_fingerprint(spec)
    bad = make_request(model_inputs(spec), task, 5_000_000_000, "bad")
    breakage(bad, spec)
    good = make_request(model_inputs(spec), task, 5_000_000_001, "good")
    # Bad then good, resent until the good one is answered and a refusal was counted: the base
    # station handles them in order, so the bad one's answer would have come first.
    assert rig.exchange([bad, good], lambda: rig.reply_to(good) is not None and rig.refused() >= 1), \
        (rig.statuses[-1:], len(rig.replies))
    rig.spin_for(0.3)
    assert rig.reply_to(bad) is None, "a refused request was answered"
    assert all(key_of(reply) == key_of(good) for reply in rig.replies)
    assert rig.wait(lambda: "last refusal" in rig.diagnostic_values())
    reason = rig.diagnostic_values()["last refusal"]
    assert named in reason, reason
    assert rig.answered() >= 1


# --- lifecycle ---------------------------------------------------------------------------------
@pytest.mark.slow  # spins for heartbeats across the transitions
def test_deactivate_stops_the_heartbeat_and_activate_restarts_the_counts(station, reference):
    spec = reference.config.input
    rig = station()
    rig.ask(make_request(model_inputs(spec), spec_fingerprint(spec), 6_000_000_000))
    assert rig.wait(lambda: rig.answered() >= 1)
    assert rig.station.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    rig.spin_for(0.5)  # drain what was sent before
    count = len(rig.statuses)
    rig.spin_for(1.0)
    assert len(rig.statuses) == count, "an inactive base station kept sending heartbeats"
    assert rig.station.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert rig.wait(lambda: len(rig.statuses) > count)
    assert rig.last_status().answered == 0 and rig.last_status().refused == 0


def test_configure_fails_cleanly_for_a_missing_weights_file(station, tmp_path, capfd):
    missing = tmp_path / "none.safetensors"
    rig = station(weights=missing, start=False)
    assert rig.station.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert rig.station._state_machine.current_state[1] == "unconfigured"
    err = capfd.readouterr().err
    assert "cannot serve" in err and str(missing) in err and "file not found" in err


def _copy_weights_without_gate(weights, folder):
    folder.mkdir()
    target = folder / "alone.safetensors"
    for source, copy in zip(checkpoint_paths(weights), checkpoint_paths(target)):
        shutil.copy(source, copy)
    assert not list(folder.glob("*gate*"))
    return target


def test_unpruned_base_station_needs_no_gate(ros_node, tiny_weights, tmp_path):
    weights = _copy_weights_without_gate(tiny_weights[0], tmp_path / "alone")
    station = BaseStation(parameter_overrides=[Parameter("weights_path", value=str(weights)),
                                               Parameter("runtime", value="eager")])
    try:
        assert station.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert station.trigger_activate() == TransitionCallbackReturn.SUCCESS
    finally:
        station.destroy_node()


def test_pruned_base_station_without_a_gate_fails_configure_naming_it(ros_node, tiny_weights, tmp_path, capfd):
    weights = _copy_weights_without_gate(tiny_weights[0], tmp_path / "alone")
    station = BaseStation(parameter_overrides=[Parameter("weights_path", value=str(weights)),
                                               Parameter("runtime", value="eager"),
                                               Parameter("prune_ratio", value=0.3)])
    try:
        assert station.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert station._state_machine.current_state[1] == "unconfigured"
    finally:
        station.destroy_node()
    err = capfd.readouterr().err
    assert "cannot serve" in err and "sentrygate" in err
