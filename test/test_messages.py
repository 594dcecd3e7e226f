"""Each sentryfuse message survives a publisher → other process → subscriber round trip over DDS."""

import math
import time

import pytest
import rclpy

from conftest import REPO_ROOT
from sentryfuse.msg import AudioChunk, ModalityState, Prediction
from sentryfuse_ros.nodes.qos import reliable_qos


def _audio_chunk():
    message = AudioChunk(sample_rate=16000, channels=1, samples=[0.0, 0.5, -0.25, 1.0])
    message.header.stamp.sec, message.header.stamp.nanosec = 12, 345
    message.header.frame_id = "mic"
    return message


def _modality_state():
    message = ModalityState(
        camera_alive=True, camera_age_s=0.0625, camera_rate_hz=15.0,
        imu_alive=False, imu_age_s=math.inf, imu_rate_hz=0.0,
        audio_alive=True, audio_age_s=0.03125, audio_rate_hz=20.0,
        live_modalities=["camera", "audio"], battery_percentage=0.375, charging=False,
        power_level=ModalityState.POWER_LOW, power_level_name="low", pruning_budget=0.5,
    )
    message.header.stamp.sec = 99
    return message


def _prediction():
    message = Prediction(
        label="7", class_id=7, confidence=0.875, class_scores=[0.0125] * 9 + [0.875],
        live_modalities=["camera", "imu", "audio"], power_level=1, prune_ratio=0.25,
        plan_id="camera+imu+audio@0.25", inference_time_ms=3.5, kept_parameters=700, total_parameters=1000,
    )
    message.header.stamp.sec, message.header.frame_id = 5, "camera_optical_frame"
    return message


@pytest.mark.slow  # a peer process over DDS
@pytest.mark.parametrize("make_message", [_audio_chunk, _modality_state, _prediction], ids=lambda f: f.__name__[1:])
def test_message_round_trips_through_another_process(ros_node, processes, make_message):
    sent = make_message()
    message_type = type(sent)
    peer = processes.start(str(REPO_ROOT / "test" / "msg_echo_peer.py"), message_type.__name__, "30", name="echo")
    qos = reliable_qos(10)
    received = []
    publisher = ros_node.create_publisher(message_type, "roundtrip/in", qos)
    subscription = ros_node.create_subscription(message_type, "roundtrip/out", received.append, qos)
    try:
        deadline = time.monotonic() + 20.0
        next_send = 0.0
        while not received and time.monotonic() < deadline and peer.poll() is None:
            if time.monotonic() >= next_send:  # resend until discovery completes
                publisher.publish(sent)
                next_send = time.monotonic() + 0.2
            rclpy.spin_once(ros_node, timeout_sec=0.05)
        assert received, f"no echo within 20 s; peer log:\n{processes.log(peer)}"
        assert received[0] == sent
    finally:
        ros_node.destroy_publisher(publisher)
        ros_node.destroy_subscription(subscription)

