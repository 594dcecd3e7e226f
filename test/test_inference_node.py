"""inference_node end to end: real processes over DDS, the test publishing sensors like a robot."""

from __future__ import annotations

import time

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState

from conftest import REPO_ROOT, must_call, wait_for
from inference_rig import RATES, Predictions, set_parameter
from inference_rig import start as _start
from monitor_rig import MonitorRig
from sentryfuse_ros.nodes import inference_params
from sentryfuse_ros.nodes.params import values_from_params_file


@pytest.mark.slow  # inference_node (and heartbeat_monitor) processes over DDS
def test_predictions_flow_with_source_stamps_and_follow_dropout_and_power(ros_node, processes, tiny_weights):
    inference = _start(processes, tiny_weights)
    rig, predictions = MonitorRig(ros_node), Predictions(ros_node)
    sent_stamps = set()
    original_send = rig.send

    def send_and_record(sensor, msg=None):
        msg = msg if msg is not None else rig.message(sensor)
        if sensor != "battery":
            sent_stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        original_send(sensor, msg)

    rig.send = send_and_record
    full = lambda: predictions.latest() is not None and list(predictions.latest().used_modalities) == ["camera", "imu", "audio"]
    assert rig.run(40.0, RATES, until=full), f"no full-modality prediction; log:\n{processes.log(inference)}"
    latest = predictions.latest()
    assert (latest.header.stamp.sec, latest.header.stamp.nanosec) in sent_stamps
    assert latest.header.frame_id in ("test_camera", "test_imu", "test_mic")
    assert len(latest.class_scores) == 10 and abs(sum(latest.class_scores) - 1.0) < 1e-4
    assert latest.plan_id.startswith("camera+imu+audio@") and latest.kept_parameters <= latest.total_parameters

    # The camera stops: predictions keep coming, from the remaining sensors and their own plan.
    no_camera = lambda: predictions.latest() is not None and list(predictions.latest().used_modalities) == ["imu", "audio"]
    assert rig.run(15.0, {"imu": 100.0, "audio": 20.0}, until=no_camera), processes.log(inference)
    assert predictions.latest().plan_id.startswith("imu+audio@")

    # The battery falls to critical: the ratio follows the shipped power policy's critical level.
    ratio = values_from_params_file(REPO_ROOT / "config" / "sentryfuse.yaml", "inference_node",
                                    inference_params.PARAMS)["policy.critical.prune_ratio"]
    critical = lambda: (predictions.latest() is not None and predictions.latest().power_level == 3  # noqa: E731
                        and abs(predictions.latest().prune_ratio - ratio) < 1e-6)
    assert rig.run(15.0, RATES, until=critical, on_tick=lambda now: rig.battery(0.05)), processes.log(inference)
    assert predictions.latest().power_level == 3
    assert predictions.latest().kept_parameters < predictions.latest().total_parameters


@pytest.mark.slow  # inference_node (and heartbeat_monitor) processes over DDS
def test_parameters_apply_live_and_bad_values_are_rejected_with_a_reason(ros_node, processes, tiny_weights):
    inference = _start(processes, tiny_weights)
    rig, predictions = MonitorRig(ros_node), Predictions(ros_node)
    assert rig.run(40.0, RATES, until=lambda: predictions.latest() is not None), processes.log(inference)

    result = set_parameter(ros_node, "prune_ratio", 0.3)
    assert result.successful, result.reason
    fixed = lambda: abs(predictions.latest().prune_ratio - 0.3) < 1e-6
    assert rig.run(10.0, RATES, until=fixed), processes.log(inference)

    rejected = set_parameter(ros_node, "prune_ratio", 1.5)
    assert not rejected.successful and "prune_ratio" in rejected.reason
    missing = set_parameter(ros_node, "weights_path", "/no/such.safetensors")
    assert not missing.successful and "file not found" in missing.reason
    start = len(predictions.received)
    assert rig.run(5.0, RATES, until=lambda: len(predictions.received) > start + 3)
    assert all(abs(p.prune_ratio - 0.3) < 1e-6 for p in predictions.since(start))


@pytest.mark.slow  # inference_node (and heartbeat_monitor) processes over DDS
def test_lifecycle_deactivate_activate_and_malformed_messages(ros_node, processes, tiny_weights):
    inference = _start(processes, tiny_weights)
    rig, predictions = MonitorRig(ros_node), Predictions(ros_node)
    assert rig.run(40.0, RATES, until=lambda: predictions.latest() is not None), processes.log(inference)

    deactivate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE))
    assert must_call(ros_node, ChangeState, "/inference_node/change_state", deactivate).success
    # Drain what was published before the deactivation: until a second passes with nothing new.
    seen = [len(predictions.received), time.monotonic()]

    def drained():
        if len(predictions.received) != seen[0]:
            seen[:] = [len(predictions.received), time.monotonic()]
        return time.monotonic() - seen[1] >= 1.0

    assert rig.run(20.0, RATES, until=drained), "predictions kept coming after the deactivation"
    count = len(predictions.received)
    rig.run(2.0, RATES)
    assert len(predictions.received) == count, "an inactive node must not predict"

    activate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
    assert must_call(ros_node, ChangeState, "/inference_node/change_state", activate).success
    assert rig.run(20.0, RATES, until=lambda: len(predictions.received) > count), processes.log(inference)

    bad_image = rig.message("camera")
    bad_image.step = 3  # step < width: malformed
    bad_imu = rig.message("imu")
    bad_imu.linear_acceleration.x = float("nan")
    bad_audio = rig.message("audio")
    bad_audio.sample_rate = 0
    # Depth-1 sensor queues keep only the newest message: send each malformed one on its own.
    for msg, sensor in ((bad_image, "camera"), (bad_imu, "imu"), (bad_audio, "audio")):
        rig.send(sensor, msg)
        rig.run(0.3)
    counted = lambda: all(int(rig.status_values("inference").get(f"{s} invalid", 0)) >= 1 for s in ("camera", "imu", "audio"))
    assert rig.run(10.0, until=counted), rig.status_values("inference")
    assert "step" in rig.status_values("inference")["camera last invalid"]
    count = len(predictions.received)
    assert rig.run(20.0, RATES, until=lambda: len(predictions.received) > count + 5)
    assert inference.poll() is None, "the node died on malformed input"


@pytest.mark.slow  # inference_node (and heartbeat_monitor) processes over DDS
def test_missing_weights_fail_configure_with_a_clear_message(processes, tmp_path):
    process = processes.start(
        "-m", "sentryfuse_ros.nodes.inference_node", "--ros-args", "-p", f"weights_path:={tmp_path / 'none.safetensors'}",
        name="inference",
    )
    assert wait_for(lambda: process.poll() is not None, timeout=30.0)
    assert process.returncode != 0
    assert "file not found" in processes.log(process)


@pytest.mark.slow  # loads and plans twice (~4 s)
def test_a_failed_weights_load_is_not_remembered(ros_node, tiny_weights, tmp_path):
    """Setting a path whose file is missing fails; once the file is there, the same path works."""
    import shutil

    from rclpy.parameter import Parameter as NodeParameter

    from sentryfuse_ros.model.checkpoint import checkpoint_paths
    from sentryfuse_ros.nodes.inference_node import InferenceNode
    from sentryfuse_ros.nodes.lifecycle import autostart

    weights, gate = tiny_weights
    node = InferenceNode(parameter_overrides=[
        NodeParameter("weights_path", value=str(weights)), NodeParameter("gate_path", value=str(gate)),
        NodeParameter("prediction_topic", value="/remembered/prediction"),
    ])
    try:
        assert autostart(node)
        later = tmp_path / "later"
        missing = node.set_parameters([NodeParameter("weights_path", value=str(later) + ".safetensors")])[0]
        assert not missing.successful and "file not found" in missing.reason
        for source, target in zip(checkpoint_paths(weights), checkpoint_paths(later)):
            shutil.copy(source, target)
        present = node.set_parameters([NodeParameter("weights_path", value=str(later) + ".safetensors")])[0]
        assert present.successful, present.reason
    finally:
        node.destroy_node()


def test_setting_weights_path_alone_deploys_a_model_of_another_task_with_its_gate(ros_node, tiny_weights, tmp_path):
    """`ros2 param set /inference_node weights_path X` with gate_path empty: the gate beside X comes
    with it, and the node serves X's task (its classes, modalities and IMU axes) from the next tick."""
    import shutil
    from dataclasses import replace

    import numpy as np

    from rclpy.parameter import Parameter as NodeParameter

    from conftest import ONE_LAYER, save_with_gate
    from sentryfuse_ros.data.spec import IMU_AXES, InputSpec
    from sentryfuse_ros.model import SentryAttend
    from sentryfuse_ros.model.checkpoint import checkpoint_paths, save_checkpoint
    from sentryfuse_ros.model.gate_checkpoint import gate_beside
    from sentryfuse_ros.nodes import encode
    from sentryfuse_ros.nodes.inference_node import InferenceNode
    from sentryfuse_ros.nodes.lifecycle import autostart
    from sentryfuse_ros.nodes.stamps import ns_to_stamp

    wrist = InputSpec(modalities=("imu",), class_names=("rest", "walk", "run"), imu_rate_hz=50.0,
                      imu_window_samples=150, imu_axes=IMU_AXES[:3])
    model = SentryAttend(replace(ONE_LAYER, input=wrist)).eval()
    weights, _ = save_with_gate(model, tmp_path / "wrist" / "sentryattend")
    weights_only = save_checkpoint(model, tmp_path / "alone" / "sentryattend")  # no gate beside it
    digits_weights = tmp_path / "digits" / "sentryattend.safetensors"  # the tiny digits pair, as shipped
    for source, target in [(tiny_weights[0], digits_weights), (tiny_weights[1], gate_beside(digits_weights))]:
        for old, new in zip(checkpoint_paths(source), checkpoint_paths(target)):
            new.parent.mkdir(exist_ok=True)
            shutil.copy(old, new)
    node = InferenceNode(parameter_overrides=[
        NodeParameter("weights_path", value=str(digits_weights)),
        NodeParameter("runtime", value="eager"), NodeParameter("prebuild_plans", value=False),
    ])
    try:
        assert autostart(node)
        assert node._loop.spec.modalities == ("camera", "imu", "audio")
        unpaired = node.set_parameters([NodeParameter("weights_path", value=str(weights_only))])[0]
        assert not unpaired.successful and "sentrygate" in unpaired.reason and "file not found" in unpaired.reason
        deployed = node.set_parameters([NodeParameter("weights_path", value=str(weights))])[0]
        assert deployed.successful, deployed.reason
        node._reload.join(timeout=60)
        node._on_tick()  # the tick switches to the reloaded model
        assert node._loop.spec == wrist
        assert node._consumable(0, ("camera", "imu", "audio")) == ("imu",)
        # A robot IMU without the accelerometer this task reads: each message is refused with why.
        no_accel = encode.imu_to_msg(np.zeros(6, np.float32), ns_to_stamp(10**18), "imu")
        no_accel.linear_acceleration_covariance[0] = -1.0
        assert "no linear acceleration (covariance[0] = -1), but accel_x, accel_y, accel_z are used" in node._read(
            "imu", no_accel)
    finally:
        node.destroy_node()
