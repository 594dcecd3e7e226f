"""A task's input spec (data/spec.py): stored in the checkpoint, shaping the model, the
preprocessing and the node's windows; recorded datasets (data/recorded.py) are checked against it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import ONE_LAYER
from sentryfuse_ros.data.preprocess import image_from_buffer, image_tensor, imu_tensor
from sentryfuse_ros.data.recorded import (DatasetError, RecordedSplit, dataset_dir_for_writing, load_recorded_split,
                                          save_dataset)
from sentryfuse_ros.data.spec import IMU_AXES, INPUT_SPEC, InputSpec, describe_task
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.model.checkpoint import CheckpointError, checkpoint_paths, load_checkpoint, save_checkpoint
from sentryfuse_ros.model.config import SentryAttendConfig
from sentryfuse_ros.nodes.sensor_windows import SensorWindows

# A wrist IMU without a gyroscope, 50 Hz, 3 s windows, three classes.
WRIST = InputSpec(modalities=("imu",), class_names=("rest", "walk", "run"), imu_rate_hz=50.0,
                  imu_window_samples=150, imu_axes=IMU_AXES[:3])


def test_spec_round_trips_through_json_and_rejects_what_cannot_be_a_task():
    assert InputSpec.from_dict(json.loads(json.dumps(WRIST.to_dict()))) == WRIST
    assert WRIST.imu_channels == 3 and WRIST.n_classes == 3 and WRIST.imu_window_s == 3.0
    for bad, problem in [
        (dict(modalities=("imu", "camera")), "order"),
        (dict(modalities=("lidar",)), "unknown modalities"),
        (dict(class_names=("a",)), "at least two distinct"),
        (dict(class_names=("a", "a")), "at least two distinct"),
        (dict(image_channels=2), "image_channels"),
        (dict(imu_axes=("gyro_x", "accel_x")), "keep the order"),
        (dict(imu_axes=("magnetometer_x",)), "distinct names"),
        (dict(imu_rate_hz=0.0), "imu_rate_hz must be a positive"),
        (dict(audio_window_s=-1.0), "audio_window_s"),
    ]:
        with pytest.raises(ValueError, match=problem):
            replace(INPUT_SPEC, **bad)
    with pytest.raises(ValueError, match="unknown input spec fields"):
        InputSpec.from_dict({"image_size": 28, "lidar_beams": 16})
    assert "IMU accel_x, accel_y, accel_z at 50 Hz, 3 s window" in describe_task(WRIST)


def test_the_checkpoint_carries_the_task_and_the_model_is_built_from_it(tmp_path):
    model = SentryAttend(replace(ONE_LAYER, input=WRIST)).eval()
    assert set(model.tokenizers) == {"imu"} and model.classifier.out_features == 3
    with pytest.raises(ValueError, match=r"not inputs of this model; it takes \('imu',\)"):
        model({"camera": torch.zeros(1, 1, 28, 28)})
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "wrist")).model
    assert loaded.config.input == WRIST
    inputs = {"imu": torch.randn(2, 3, 150)}
    torch.testing.assert_close(loaded(inputs), model(inputs))


def test_a_checkpoint_written_before_the_spec_was_stored_is_the_digits_task(tmp_path):
    weights = save_checkpoint(SentryAttend(ONE_LAYER), tmp_path / "old")
    config_path = checkpoint_paths(weights)[1]
    document = json.loads(config_path.read_text())
    del document["config"]["input"]
    document["config"]["n_classes"] = 10
    config_path.write_text(json.dumps(document))
    assert load_checkpoint(weights).model.config.input == INPUT_SPEC
    document["config"]["n_classes"] = 4  # contradicts the digits' ten classes
    config_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="n_classes=4 but the input spec names 10 classes"):
        load_checkpoint(weights)
    assert SentryAttendConfig.from_dict(SentryAttendConfig().to_dict()) == SentryAttendConfig()


def test_preprocessing_follows_the_spec_rgb_and_imu_axes():
    rgb = replace(INPUT_SPEC, image_channels=3, image_size=16)
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    decoded = image_from_buffer(bgr.tobytes(), 20, 30, "bgr8", 90, channels=3)
    assert decoded.shape == (20, 30, 3) and decoded[..., 2].min() == 1.0 and decoded[..., 0].max() == 0.0
    tensor = image_tensor(decoded, spec=rgb)
    assert tensor.shape == (3, 16, 16)
    assert tensor[2].mean() > tensor[0].mean()  # blue stays in the blue channel
    gray = image_tensor(np.full((20, 30), 0.5, np.float32), spec=rgb)
    torch.testing.assert_close(gray[0], gray[2])  # a grey frame is repeated into the three channels
    rows = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    assert imu_tensor(rows, 50.0, WRIST).shape == (3, 150)
    with pytest.raises(ValueError, match=r"shape \(T, 3\) \(accel_x, accel_y, accel_z\)"):
        imu_tensor(np.zeros((200, 6), np.float32), 50.0, WRIST)


def test_windows_keep_the_tasks_imu_axes():
    windows = SensorWindows(WRIST)
    rows = np.random.default_rng(1).normal(size=(150, 6)).astype(np.float32)
    stamps = 10**12 + np.arange(150, dtype=np.int64) * 20_000_000
    windows.add_imu_many(stamps, "wrist", rows)
    snapshot = windows.snapshot(("imu",), max_skew_s=0.5)
    torch.testing.assert_close(snapshot.inputs["imu"][0], imu_tensor(rows[:, :3], 50.0, WRIST))


def _split(spec: InputSpec, count: int) -> RecordedSplit:
    return RecordedSplit({"imu": torch.randn(count, spec.imu_channels, spec.imu_window_samples)},
                         torch.arange(count) % spec.n_classes, torch.arange(count, dtype=torch.long))


def test_recorded_datasets_save_load_and_refuse_bad_files(tmp_path):
    directory = save_dataset(tmp_path / "wrist", WRIST, {s: _split(WRIST, 4) for s in ("train", "val", "test")}, {})
    split, spec = load_recorded_split(directory, "val")
    assert spec == WRIST and len(split) == 4 and split.inputs["imu"].shape == (4, 3, 150)
    with pytest.raises(DatasetError, match="exists; use --force"):
        dataset_dir_for_writing(directory, replace=False)
    with pytest.raises(DatasetError, match="benchmark's name"):
        dataset_dir_for_writing("digits", replace=True)
    with pytest.raises(DatasetError, match="unknown split"):
        load_recorded_split(directory, "holdout")
    with pytest.raises(DatasetError, match="no dataset 'nothing_here'"):
        load_recorded_split("nothing_here", "train")
    # Tensors that do not fit the spec, labels out of range, a broken file, a broken description.
    save_dataset(tmp_path / "short", replace(WRIST, imu_window_samples=100), {"train": _split(WRIST, 2)}, {})
    with pytest.raises(DatasetError, match=r"imu has shape \(2, 3, 150\), the spec needs \(2, 3, 100\)"):
        load_recorded_split(tmp_path / "short", "train")
    two_classes = replace(WRIST, class_names=("rest", "walk"))
    save_dataset(tmp_path / "labels", two_classes, {"train": _split(WRIST, 3)}, {})
    with pytest.raises(DatasetError, match=r"labels outside 0..1"):
        load_recorded_split(tmp_path / "labels", "train")
    (directory / "test.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(DatasetError, match="not a readable safetensors file"):
        load_recorded_split(directory, "test")
    (directory / "dataset.json").write_text("{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_recorded_split(directory, "train")


def test_train_refuses_to_fine_tune_a_checkpoint_of_another_task(tmp_path, capsys):
    from sentryfuse_ros import cli

    directory = save_dataset(tmp_path / "wrist", WRIST, {s: _split(WRIST, 4) for s in ("train", "val", "test")}, {})
    digits = save_checkpoint(SentryAttend(ONE_LAYER), tmp_path / "digits")
    code = cli.main(["train", "--data", str(directory), "--init", str(digits), "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "trained for another task" in err and "modalities, class_names" in err
    assert not (tmp_path / "run").exists()
