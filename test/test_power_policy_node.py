"""The power policy in the running inference_node: real processes over DDS.

A level change applies at the next tick, a shed modality's subscription is really gone from the
graph (and comes back), shedding never leaves a prediction without input, the change trigger
fires on a new scene and stays quiet on a static one, and bad policy values are refused."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import wait_for
from inference_rig import RATES, Predictions, set_parameter, start
from monitor_rig import MonitorRig
from sentryfuse_ros.nodes import encode

CRITICAL = 3


def _readers(node, topic: str) -> list[str]:
    return sorted(info.node_name for info in node.get_subscriptions_info_by_topic(topic))


def _reads(node, rig, topic: str, expected: bool, seconds: float = 20.0) -> bool:
    """Wait (publishing RATES) until inference_node does (or does not) read `topic`."""
    return rig.run(seconds, RATES, until=lambda: ("inference_node" in _readers(node, topic)) == expected)


@pytest.mark.slow  # heartbeat_monitor and inference_node processes over DDS
def test_a_level_change_applies_the_policy_at_the_next_tick_and_shedding_unsubscribes(ros_node, processes, tiny_weights):
    inference = start(processes, tiny_weights, "-p", "policy.critical.shed:=imu", "-p", "policy.critical.trigger:=rate",
                      "-p", "policy.critical.rate_hz:=4.0", "-p", "policy.critical.prune_ratio:=0.6",
                      "-p", "policy.full.rate_hz:=10.0")
    rig, predictions = MonitorRig(ros_node), Predictions(ros_node)
    battery = {"level": 1.0, "next": 0.0}

    def send_battery(now):
        if now >= battery["next"]:
            rig.battery(battery["level"])
            battery["next"] = now + 0.5

    full = lambda: (predictions.latest() is not None and predictions.latest().power_level == 0  # noqa: E731
                    and list(predictions.latest().used_modalities) == ["camera", "imu", "audio"])
    assert rig.run(60.0, RATES, until=full, on_tick=send_battery), processes.log(inference)
    assert _readers(ros_node, "/imu/data") == ["heartbeat_monitor", "inference_node"]

    battery["level"], battery["next"] = 0.05, 0.0
    critical_state = lambda: rig.state is not None and rig.state.power_level == CRITICAL  # noqa: E731
    assert rig.run(20.0, RATES, until=critical_state, on_tick=send_battery), processes.log(inference)
    after_state = len(predictions.received)
    critical = lambda: predictions.latest().power_level == CRITICAL  # noqa: E731
    assert rig.run(10.0, RATES, until=critical, on_tick=send_battery), processes.log(inference)
    # The tick that was running when the state came may still use the old level; the next one may not.
    assert sum(p.power_level != CRITICAL for p in predictions.since(after_state)) <= 1
    latest = predictions.latest()
    assert abs(latest.prune_ratio - 0.6) < 1e-6 and list(latest.used_modalities) == ["camera", "audio"]
    assert list(latest.live_modalities) == ["camera", "imu", "audio"]  # the monitor still sees the IMU alive
    # The shed IMU is not taken at all: inference_node's subscription is gone, the monitor's stays.
    assert _reads(ros_node, rig, "/imu/data", expected=False), _readers(ros_node, "/imu/data")
    assert "heartbeat_monitor" in _readers(ros_node, "/imu/data")
    assert rig.state.imu_alive
    # 4 ticks/s at critical (the policy's rate) instead of 10: count predictions over a stretch.
    count, started = len(predictions.received), time.monotonic()
    rig.run(3.0, RATES, on_tick=send_battery)
    per_s = (len(predictions.received) - count) / (time.monotonic() - started)
    assert per_s <= 4.0 * 1.5, f"{per_s:.1f} predictions/s at a 4 Hz level"

    battery["level"], battery["next"] = 1.0, 0.0
    assert _reads(ros_node, rig, "/imu/data", expected=True), _readers(ros_node, "/imu/data")
    assert rig.run(30.0, RATES, until=full, on_tick=send_battery), processes.log(inference)


@pytest.mark.slow
def test_shedding_never_leaves_a_prediction_without_input(ros_node, processes, tiny_weights):
    # No battery: the monitor reports normal, which sheds both IMU and audio here. The camera is
    # dead, so every live modality is shed: the one worth most (value_order: audio before imu) is kept.
    inference = start(processes, tiny_weights, "-p", "policy.normal.shed:=imu,audio")
    rig, predictions = MonitorRig(ros_node), Predictions(ros_node)
    streams = {"imu": RATES["imu"], "audio": RATES["audio"]}
    audio_only = lambda: predictions.latest() is not None and list(predictions.latest().used_modalities) == ["audio"]  # noqa: E731
    assert rig.run(40.0, streams, until=audio_only), processes.log(inference)
    assert rig.run(20.0, streams, until=lambda: "inference_node" not in _readers(ros_node, "/imu/data"))
    assert "inference_node" in _readers(ros_node, "/audio/chunk")
    # The camera comes back: it is not shed, so it is used, and the audio is shed again.
    camera = lambda: predictions.latest() is not None and list(predictions.latest().used_modalities) == ["camera"]  # noqa: E731
    assert rig.run(30.0, RATES, until=camera), processes.log(inference)
    assert rig.run(20.0, RATES, until=lambda: "inference_node" not in _readers(ros_node, "/audio/chunk"))


@pytest.mark.slow
def test_the_change_trigger_fires_on_a_new_scene_and_stays_quiet_on_a_static_one(ros_node, processes, tiny_weights):
    inference = start(processes, tiny_weights, "-p", "policy.normal.trigger:=change")
    rig, predictions = MonitorRig(ros_node), Predictions(ros_node)
    all_three = lambda: predictions.latest() is not None and list(predictions.latest().used_modalities) == ["camera", "imu", "audio"]  # noqa: E731
    assert rig.run(40.0, RATES, until=all_three), processes.log(inference)
    assert all(p.trigger != "rate" for p in predictions.received)
    # The same frame, IMU reading and silence: once the follow-ups of the scene's first 2 s are
    # over, nothing new to predict (20 ticks/s would give ~80).
    rig.run(2.5, RATES)
    quiet_from = len(predictions.received)
    rig.run(4.0, RATES)
    assert predictions.since(quiet_from) == [], [p.trigger for p in predictions.since(quiet_from)]

    # A new scene: another image on the camera.
    new_image = np.full((28, 28), 200, np.uint8)
    frames = {"next": 0.0}

    def send_new_frame(now):
        if now >= frames["next"]:
            rig.send("camera", encode.image_to_msg(new_image, ros_node.get_clock().now().to_msg(), "test_camera"))
            frames["next"] = now + 1 / RATES["camera"]

    fired = lambda: len(predictions.received) > quiet_from  # noqa: E731
    assert rig.run(10.0, {"imu": RATES["imu"], "audio": RATES["audio"]}, until=fired, on_tick=send_new_frame), \
        processes.log(inference)
    first = predictions.since(quiet_from)[0]
    assert first.trigger.startswith("camera"), first.trigger
    # The new scene empties the IMU and audio windows: the camera alone predicts until they refill.
    assert list(first.used_modalities) == ["camera"]


@pytest.mark.slow
def test_bad_policy_values_are_refused_with_a_reason(ros_node, processes, tiny_weights):
    inference = start(processes, tiny_weights, monitor=False)
    assert wait_for(lambda: "inference_node" in ros_node.get_node_names(), timeout=60.0), processes.log(inference)
    for name, value, reason in (("policy.low.shed", "lidar", "unknown modality"),
                                ("policy.low.shed", "camera,imu,audio", "sheds every modality"),
                                ("policy.critical.trigger", "sometimes", "must be one of"),
                                ("policy.critical.rate_hz", 0.0, "policy.critical.rate_hz"),
                                ("policy.value_order", ["camera", "imu"], "value_order"),
                                ("change.camera", -0.1, "change.camera")):
        result = set_parameter(ros_node, name, value)
        assert not result.successful and reason in result.reason, (name, result.reason)
    accepted = set_parameter(ros_node, "policy.low.shed", "imu, audio")
    assert accepted.successful, accepted.reason
