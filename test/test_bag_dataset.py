"""`sentryfuse data from-bag` (bags/dataset.py, bags/labels.py): a dataset cut from bags as the node
cuts its windows, its spec measured from the bags, and clear errors for bags and labels it cannot use."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from conftest import from_bag_args
from sentryfuse_ros.bags import dataset as bag_dataset
from sentryfuse_ros.bags import gesture_bag
from sentryfuse_ros.bags.labels import LabelError, intervals_from_csv, intervals_from_topic
from sentryfuse_ros.bags.types import typestore
from sentryfuse_ros.bench.stream_replay import SAMPLE_PERIOD_S, sim_messages
from sentryfuse_ros.data import gestures
from sentryfuse_ros.data.preprocess import image_tensor, imu_tensor
from sentryfuse_ros.data.recorded import load_recorded_split
from sentryfuse_ros.data.spec import IMU_AXES
from sentryfuse_ros.nodes.sim_sources import SyntheticSource
from sentryfuse_ros.nodes.stamps import NS_PER_S, ns_to_stamp, stamp_to_ns

GESTURES = 8


@pytest.fixture(scope="module")
def gesture_recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("gestures") / "bag"
    return out, gesture_bag.write_gesture_bag(out, "train", limit=GESTURES)


def test_a_gesture_bag_becomes_the_recordings_windows(gesture_recording, tmp_path):
    bag, written = gesture_recording
    summary = bag_dataset.from_bags(from_bag_args([bag], tmp_path / "ds", "--val", "0.25", "--test", "0.25", "--block", "2"))
    spec = load_recorded_split(tmp_path / "ds", "train")[1]
    # The spec is measured: 10 Hz, the six axes the watch provides, one label interval (10 s of
    # gesture and 0.5 s of rest) per window, the dataset's four classes in natural order.
    assert spec.modalities == ("imu",) and spec.imu_rate_hz == 10.0 and spec.imu_axes == IMU_AXES
    assert spec.imu_window_samples == 105 and set(spec.class_names) == {"Standing", "Running", "Walking", "Badminton"}
    assert sum(summary["intervals_per_split"].values()) == GESTURES and summary["splits"]["test"] == 2
    assert summary["splits"]["train"] == 4 * summary["intervals_per_split"]["train"]  # one per tick phase
    assert summary["bags"][0]["rejected"] == {} and summary["bags"][0]["skipped"] == {}
    # Each sample is exactly the preprocessing of the newest 10.5 s of the IMU stream at its end
    # (its gesture and the rest after it): the window the node holds at its last tick before the
    # next label.
    data = gestures.load_split("train")
    recordings = [np.concatenate([data.accel[i], data.gyro[i]], axis=1) for i in written["dataset_indices"]]
    stream = np.concatenate([part for r in recordings[:-1] for part in (r, np.zeros((5, 6)))] + [recordings[-1]])
    names = [data.class_names[data.labels[i]] for i in written["dataset_indices"]]
    seen = 0
    for split in ("train", "val", "test"):
        recorded, _ = load_recorded_split(tmp_path / "ds", split)
        for tensor, label, stamp in zip(recorded.inputs["imu"], recorded.labels, recorded.stamps_ns.tolist()):
            row = round((stamp - gesture_bag.START_NS) * 10 / NS_PER_S)  # the newest row used
            expected = imu_tensor(stream[max(0, row - 104): row + 1].astype(np.float32), 10.0, spec)
            torch.testing.assert_close(tensor, expected, rtol=0, atol=2e-6)
            assert spec.class_names[label] == names[row // 105]
            seen += 1
    assert seen == summary["splits"]["train"] + 4


def test_labels_from_a_csv_and_a_window_length_chosen(gesture_recording, tmp_path):
    bag, _ = gesture_recording
    summary = bag_dataset.from_bags(from_bag_args([bag], tmp_path / "ds", "--labels", str(bag / "labels.csv"),
                                          "--imu-window-s", "4", "--block", "1"))
    assert summary["spec"]["imu_window_samples"] == 40
    assert sum(summary["intervals_per_split"].values()) == GESTURES  # each CSV interval ends inside its gesture


def _digits_like_bag(path, samples: int) -> list[str]:
    """sensor_sim's camera, IMU and audio streams of synthetic samples and their labels, written
    by rosbags as `sentryfuse record` would (log time = stamp here)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    source = SyntheticSource(samples)
    messages = sim_messages(source, list(range(samples)))
    writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    connections = {name: writer.add_connection(topic, msgtype, typestore=store) for name, topic, msgtype in [
        ("camera", "/camera/image_raw", "sensor_msgs/msg/Image"), ("imu", "/imu/data", "sensor_msgs/msg/Imu"),
        ("audio", "/audio/chunk", "sentryfuse/msg/AudioChunk"),
        ("labels", "/sentryfuse/ground_truth", "std_msgs/msg/Header")]}
    labels = [str(source.sample(k).label) for k in range(samples)]
    timeline = [(stamp_to_ns(msg.header.stamp), name, serialize_message(msg)) for _, name, msg in messages]
    first_ns = min(t for t, _, _ in timeline)
    for k, name in enumerate(labels):
        at = first_ns + int(k * SAMPLE_PERIOD_S * NS_PER_S)
        timeline.append((at, "labels", serialize_message(Header(stamp=ns_to_stamp(at), frame_id=name))))
    for at, name, data in sorted(timeline, key=lambda item: item[0]):
        writer.write(connections[name], at, data)
    writer.close()
    return labels


def test_a_three_sensor_bag_gives_the_digits_shapes_and_the_frames_of_its_samples(tmp_path):
    labels = _digits_like_bag(tmp_path / "bag", 10)
    summary = bag_dataset.from_bags(from_bag_args([tmp_path / "bag"], tmp_path / "ds", "--val", "0", "--test", "0"))
    recorded, spec = load_recorded_split(tmp_path / "ds", "train")
    assert spec.modalities == ("camera", "imu", "audio") and spec.image_channels == 1
    assert (spec.imu_rate_hz, spec.imu_window_samples, spec.audio_rate_hz, spec.audio_window_s) == (100.0, 200, 16000, 2.0)
    assert summary["bags"][0]["samples"] == 10 and 10 < len(recorded) <= 40  # up to four tick phases each
    source, first_ns = SyntheticSource(10), int(recorded.stamps_ns.min())
    for row, stamp in enumerate(recorded.stamps_ns.tolist()):
        k = int((stamp - first_ns) // (SAMPLE_PERIOD_S * NS_PER_S))  # the sample playing at the window's end
        assert spec.class_names[recorded.labels[row]] == labels[k]
        torch.testing.assert_close(recorded.inputs["camera"][row], image_tensor(source.sample(k).image, spec=spec))
    # --modalities keeps a subset; a modality the bag lacks is refused.
    summary = bag_dataset.from_bags(from_bag_args([tmp_path / "bag"], tmp_path / "cam", "--modalities", "camera", "--force"))
    assert summary["spec"]["modalities"] == ("camera",)


def test_label_intervals_and_csv_problems(tmp_path):
    intervals = intervals_from_topic([(0, "a"), (5, ""), (8, "b")], end_ns=12)
    assert [(i.start_ns, i.end_ns, i.name) for i in intervals] == [(0, 5, "a"), (8, 12, "b")]
    good = tmp_path / "good.csv"
    good.write_text("start_offset_s,end_offset_s,label\n0.5,1.5,wave\n\n2,3,rest\n")
    assert [(i.start_ns, i.end_ns) for i in intervals_from_csv(good, first_ns=10 * NS_PER_S)] == [
        (10_500_000_000, 11_500_000_000), (12 * NS_PER_S, 13 * NS_PER_S)]
    for text, problem in [
        ("", "empty"),
        ("begin,end,label\n", "header 'begin,end,label' must be"),
        ("start_s,end_s,label\n1,2\n", ":2: expected 3 columns"),
        ("start_s,end_s,label\n1,x,a\n", ":2: start and end must be numbers"),
        ("start_s,end_s,label\n2,1,a\n", ":2: the interval ends"),
        ("start_s,end_s,label\n1,3,a\n2,4,b\n", ":3: the interval overlaps"),
        ("start_s,end_s,label\n1,2, \n", ":2: empty label"),
        ("start_s,end_s,label\n", "no label rows"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(LabelError, match=problem):
            intervals_from_csv(bad, 0)


def test_bags_it_cannot_use_are_clear_errors(gesture_recording, tmp_path, capsys):
    bag, _ = gesture_recording
    cases = [
        (from_bag_args([tmp_path / "missing"], tmp_path / "a"), "no such bag"),
        (from_bag_args([bag], tmp_path / "b", "--labels", "/robot/labels"), "no label topic /robot/labels"),
        (from_bag_args([bag], tmp_path / "c", "--modalities", "camera"), "asks for camera, which not every bag records"),
        (from_bag_args([bag], tmp_path / "d", "--val", "0.6", "--test", "0.5"), "leave some training data"),
        (from_bag_args([bag], tmp_path / "e", "--labels", str(tmp_path / "none.csv")), "cannot read the label file"),
        (from_bag_args([bag, bag], tmp_path / "f", "--labels", "a.csv", "--labels", "b.csv", "--labels", "c.csv"),
         "--labels given 3 times for 2 bags"),
    ]
    for args, problem in cases:
        assert bag_dataset.run(args) == 2
        err = capsys.readouterr().err
        assert problem in err and "Traceback" not in err, err
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "dataset.json").write_text(json.dumps({}))
    assert bag_dataset.run(from_bag_args([bag], tmp_path / "exists")) == 2
    assert "use --force" in capsys.readouterr().err


def test_split_blocks_keep_neighbours_together():
    where = bag_dataset.split_blocks(40, 4, 0.2, 0.2, seed=3)
    assert {where[i] for i in range(4)} == {where[0]}  # one block, one split
    assert where.count("test") == 8 and where.count("val") == 8
    assert bag_dataset.split_blocks(40, 4, 0.2, 0.2, seed=3) == where
