"""The README's end-to-end example at small size (`sentryfuse bench roundtrip`): simulator -> labelled
bag -> dataset -> short training -> gate training -> deploy -> live predictions while replaying;
and the second task, a real wrist-IMU recording that is not digits, through the same code."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from conftest import ONE_LAYER, REPO_ROOT, from_bag_args
from sentryfuse_ros.bags import dataset as bag_dataset
from sentryfuse_ros.bags import gesture_bag
from sentryfuse_ros.data.recorded import load_recorded_split
from sentryfuse_ros.model.checkpoint import load_checkpoint
from sentryfuse_ros.nodes.offline_loop import replay
from sentryfuse_ros.training.config import variant_config
from sentryfuse_ros.training.data import load_labelled_split
from sentryfuse_ros.training.trainer import train


def _roundtrip(out, *options) -> dict:
    done = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "bench", "roundtrip", "--out", str(out), "--json",
                           *options], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "roundtrip.json").read_text())


def _check_live_equals_offline(report: dict) -> None:
    assert report["labels_heard"] == report["intervals"] and report["intervals_without_prediction"] == 0
    every = report["all"]
    assert every["samples"] == sum(report["dataset_intervals"].values())
    # The dataset was cut as the node cuts its windows: the live node predicts what the model
    # predicts offline on the dataset's samples (a tick landing on the other side of a frame can
    # change one of them, hence not 1.0).
    assert every["same_prediction"] >= 0.9, report
    assert abs(every["live_minus_offline_points"]) <= 10.0, report


@pytest.mark.slow  # sensor_sim, recorder, trainer, inference_node and player as processes over DDS
def test_simulator_to_bag_to_model_to_live_predictions(tmp_path):
    report = _roundtrip(tmp_path, "--source", "synthetic", "--record-s", "15", "--sample-period-s", "1",
                        "--epochs", "6", "--batch-size", "8", "--gate-steps", "30", "--block", "2")
    assert report["record"]["lost"] == 0 and report["record"]["messages"]["/sentryfuse/ground_truth"] >= 11
    assert report["task"]["modalities"] == ["camera", "imu", "audio"]
    assert report["task"]["class_names"] == [str(digit) for digit in range(10)]
    _check_live_equals_offline(report)
    assert (tmp_path / "model" / "sentryattend.json").is_file() and (tmp_path / "model" / "sentrygate.json").is_file()
    assert set(report["targets"]) == {"lost_messages", "record_cpu_cores", "replay_timing_p99_ms",
                                      "live_minus_offline_points"}


@pytest.mark.slow  # seconds
def test_a_real_wrist_imu_task_runs_through_the_same_code(tmp_path):
    """BasicMotions (four activities, a watch's six IMU axes at 10 Hz): bag -> dataset -> training
    -> the node's own per-tick logic over the bag (the live node on it: `sentryfuse bench
    roundtrip --bag`, in the README) predicts the task's classes, and what it predicts at each
    label's end is what the model predicts on the dataset's sample."""
    bag = tmp_path / "gestures"
    gesture_bag.write_gesture_bag(bag, "train", limit=12)
    summary = bag_dataset.from_bags(from_bag_args([bag], tmp_path / "ds", "--block", "2", "--val", "0.2", "--test", "0.2"))
    train_data, val_data = load_labelled_split("train", tmp_path / "ds"), load_labelled_split("val", tmp_path / "ds")
    config = replace(variant_config("sentryattend"), model=replace(ONE_LAYER, input=train_data.spec), epochs=30,
                     batch_size=4, warmup_steps=5, threads=1)
    result = train(config, train_data, val_data, tmp_path / "model", progress=False)
    model = load_checkpoint(result.checkpoint).model
    assert model.config.input.modalities == ("imu",) and set(model.tokenizers) == {"imu"}
    assert model.config.input.class_names == tuple(summary["classes"])
    # The node's logic over the recording: its prediction in force at each label's end.
    messages, duration_s = _bag_timeline(bag)
    replayed = replay(messages, duration_s, 10.0, "rate", "", spec=model.config.input)
    with torch.inference_mode():
        live = [model(inputs).argmax(-1).item() for inputs in replayed.inputs]
    recorded, _ = load_recorded_split(tmp_path / "ds", "test")
    with torch.inference_mode():
        offline = model(recorded.inputs).argmax(-1).tolist()
    for stamp, guess in zip(recorded.stamps_ns.tolist(), offline):
        assert live[replayed.stamps_ns.index(stamp)] == guess


def _bag_timeline(bag):
    """(t, "imu", rclpy Imu) of a gesture bag on its log-time clock, and its length."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Imu

    from sentryfuse_ros.bags.replay import open_bag

    reader = open_bag(bag)
    try:
        start = reader.start_time
        messages = [((log_ns - start) / 1e9, "imu", deserialize_message(bytes(raw), Imu))
                    for connection, log_ns, raw in reader.messages() if connection.topic == "/imu/data"]
        return messages, (reader.end_time - start) / 1e9 + 0.1
    finally:
        reader.close()
