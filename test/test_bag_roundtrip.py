"""The README's end-to-end example at small size (`sentryfuse bench roundtrip`): simulator -> labelled
bag -> dataset -> short training -> gate training -> deploy -> live predictions while replaying;
and the second task, a real wrist-IMU recording that is not digits, through the same commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from sentryfuse_ros.bags import gesture_bag


def _roundtrip(out, *options) -> dict:
    done = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "bench", "roundtrip", "--out", str(out), "--json",
                           *options], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "roundtrip.json").read_text())


def _check_live_equals_offline(report: dict) -> None:
    assert report["labels_heard"] == report["intervals"] and report["intervals_without_prediction"] == 0
    every = report["all"]
    assert every["samples"] == sum(report["dataset"].values())
    # The dataset was cut as the node cuts its windows: the live node predicts what the model
    # predicts offline on the dataset's samples (a tick landing on the other side of a frame can
    # change one of them, hence not 1.0).
    assert every["same_prediction"] >= 0.9, report
    assert abs(every["live_minus_offline_points"]) <= 10.0, report


@pytest.mark.slow  # sensor_sim, recorder, trainer, inference_node and player as processes over DDS
def test_simulator_to_bag_to_model_to_live_predictions(tmp_path):
    report = _roundtrip(tmp_path, "--source", "synthetic", "--record-s", "20", "--sample-period-s", "1",
                        "--epochs", "10", "--batch-size", "8", "--gate-steps", "50", "--block", "2")
    assert report["record"]["lost"] == 0 and report["record"]["messages"]["/sentryfuse/ground_truth"] >= 15
    assert report["task"]["modalities"] == ["camera", "imu", "audio"]
    assert report["task"]["class_names"] == [str(digit) for digit in range(10)]
    _check_live_equals_offline(report)
    assert (tmp_path / "model" / "sentryattend.json").is_file() and (tmp_path / "model" / "sentrygate.json").is_file()
    assert set(report["targets"]) == {"lost_messages", "record_cpu_cores", "replay_timing_p99_ms",
                                      "live_minus_offline_points"}


@pytest.mark.slow  # trainer, inference_node and player as processes over DDS
def test_a_real_wrist_imu_task_runs_through_the_same_commands(tmp_path):
    bag = tmp_path / "gestures"
    gesture_bag.write_gesture_bag(bag, "train", limit=8, rate_hz=40.0)  # played 4x faster: 21 s
    report = _roundtrip(tmp_path / "run", "--bag", str(bag), "--epochs", "10", "--batch-size", "4",
                        "--gate-steps", "50", "--block", "2")
    assert report["task"]["modalities"] == ["imu"]
    assert set(report["task"]["class_names"]) == {"Standing", "Running", "Walking", "Badminton"}
    assert report["record"] is None and "lost_messages" not in report["targets"]
    _check_live_equals_offline(report)
