"""`sentryfuse gesture-bag`: the BasicMotions recordings shipped in aeon as a labelled rosbag2 bag."""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np
import pytest

from sentryfuse_ros.bags import gesture_bag
from sentryfuse_ros.bags.errors import BagError
from sentryfuse_ros.bags.replay import open_bag
from sentryfuse_ros.bags.types import typestore
from sentryfuse_ros.data import gestures

LIMIT, GAP_S = 5, 0.5


@pytest.fixture(scope="module")
def train():
    return gestures.load_split("train")


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("gesture") / "bag"
    summary = gesture_bag.write_gesture_bag(out, "train", gap_s=GAP_S, limit=LIMIT)
    store = typestore()
    reader = open_bag(out)
    messages = {"/imu/data": [], "/sentryfuse/ground_truth": []}
    try:
        for connection, log_ns, raw in reader.messages():
            messages[connection.topic].append((log_ns, store.deserialize_cdr(bytes(raw), connection.msgtype), bytes(raw)))
    finally:
        reader.close()
    return out, summary, messages


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def test_loader_reads_both_splits():
    for split in gestures.SPLITS:
        data = gestures.load_split(split)
        assert data.accel.shape == data.gyro.shape == (40, 100, 3)
        assert data.class_names == ("Standing", "Running", "Walking", "Badminton")
        assert np.bincount(data.labels).tolist() == [10, 10, 10, 10]
        assert data.rate_hz == 10.0


def test_bag_holds_the_recordings_at_their_rate(bag, train):
    out, summary, messages = bag
    assert (out / "metadata.yaml").is_file()
    order = summary["dataset_indices"]
    assert len(order) == LIMIT and len({int(train.labels[i]) for i in order[:4]}) == 4  # round-robin
    length, gap = train.accel.shape[1], round(GAP_S * train.rate_hz)
    imu, labels = messages["/imu/data"], messages["/sentryfuse/ground_truth"]
    assert len(imu) == summary["imu_messages"] == LIMIT * length + (LIMIT - 1) * gap
    assert len(labels) == summary["label_messages"] == LIMIT

    stamps = np.array([_ns(msg.header.stamp) for _, msg, _ in imu])
    assert stamps[0] == gesture_bag.START_NS
    assert (np.diff(stamps) == round(1e9 / train.rate_hz)).all()
    assert [log for log, _, _ in imu] == stamps.tolist()
    assert {msg.header.frame_id for _, msg, _ in imu} == {"imu_link"}

    values = np.array([[m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z,
                        m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z] for _, m, _ in imu])
    for n, index in enumerate(order):
        start = n * (length + gap)
        np.testing.assert_array_equal(values[start:start + length, :3], train.accel[index])
        np.testing.assert_array_equal(values[start:start + length, 3:], train.gyro[index])
        if n < LIMIT - 1:
            assert not values[start + length:start + length + gap].any()  # the rest: a still watch
        log_ns, label, _ = labels[n]
        assert _ns(label.stamp) == log_ns == stamps[start]
        assert label.frame_id == train.class_names[train.labels[index]]
    first = imu[0][1]
    assert first.orientation_covariance[0] == -1 and first.angular_velocity_covariance[0] == 0


def test_labels_csv_matches_the_label_topic(bag, train):
    out, _, messages = bag
    with (out / "labels.csv").open() as f:
        assert f.readline().strip() == "start_s,end_s,label"
        f.seek(0)
        rows = list(csv.DictReader(f))
    labels = messages["/sentryfuse/ground_truth"]
    assert len(rows) == len(labels)
    imu_stamps = [_ns(msg.header.stamp) for _, msg, _ in messages["/imu/data"]]
    for row, (_, label, _) in zip(rows, labels):
        assert row["label"] == label.frame_id
        start = int(row["start_s"].replace(".", ""))  # 9 decimals: the digits are the nanoseconds
        end = int(row["end_s"].replace(".", ""))
        assert start == _ns(label.stamp)
        first = imu_stamps.index(start)
        assert end == imu_stamps[first + train.accel.shape[1] - 1]


def test_project_decoder_reads_the_imu(bag, train):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Imu

    from sentryfuse_ros.nodes.decode import imu_sample_from_msg

    _, summary, messages = bag
    sample = imu_sample_from_msg(deserialize_message(messages["/imu/data"][0][2], Imu))
    index = summary["dataset_indices"][0]
    expected = np.concatenate([train.accel[index, 0], train.gyro[index, 0]]).astype(np.float32)
    np.testing.assert_array_equal(sample, expected)


def test_bags_are_byte_identical(tmp_path):
    for parent in ("a", "b"):
        gesture_bag.write_gesture_bag(tmp_path / parent / "bag", "test", limit=2)
    for name in ("bag.mcap", "metadata.yaml", "labels.csv"):
        assert (tmp_path / "a" / "bag" / name).read_bytes() == (tmp_path / "b" / "bag" / name).read_bytes()


def _args(out, **overrides):
    parser = argparse.ArgumentParser()
    gesture_bag.configure_parser(parser)
    args = parser.parse_args([str(out)])
    vars(args).update(overrides)
    return args


def test_existing_out_or_unknown_split_is_a_clear_error(tmp_path, capsys):
    assert gesture_bag.run(_args(tmp_path)) == 2
    assert "exists already" in capsys.readouterr().err
    assert gesture_bag.run(_args(tmp_path / "new", split="validation")) == 2
    err = capsys.readouterr().err
    assert "unknown split 'validation'" in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()
    parser = argparse.ArgumentParser()
    gesture_bag.configure_parser(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([str(tmp_path / "new"), "--split", "validation"])
    assert exit_info.value.code == 2


def test_bad_gap_limit_or_missing_aeon_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(BagError, match="whole number of samples"):
        gesture_bag.write_gesture_bag(tmp_path / "gap", "train", gap_s=0.25)
    with pytest.raises(BagError, match="--limit must be >= 1"):
        gesture_bag.write_gesture_bag(tmp_path / "limit", "train", limit=0)
    monkeypatch.setitem(sys.modules, "aeon", None)
    with pytest.raises(BagError, match="aeon package is not installed"):
        gesture_bag.write_gesture_bag(tmp_path / "aeon", "train")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace("@equalLength true", "@equalLength false"), "@equallength must be true"),
    (lambda t: t.replace(",1.0:Walk", ":Walk"), ":12: channel 1 has 2 values"),
    (lambda t: t.replace(":Walk", ":Swim"), "class 'Swim' is not one of"),
    (lambda t: t.replace("2.0,", "x,"), "not a number"),
    (lambda t: t.split("@data")[0], "no @data line"),
])
def test_malformed_ts_is_rejected(edit, problem):
    good = ("#comment\n@problemName T\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 2\n"
            "@equalLength true\n@seriesLength 3\n@classLabel true Walk Run\n@data\n"
            "1.0,2.0,3.0:4.0,5.0,6.0:Run\n0.5,2.0,0.0:1.0,0.0,1.0:Walk\n")
    series, labels, names = gestures.parse_ts(good)
    assert series.shape == (2, 2, 3) and labels.tolist() == [1, 0] and names == ("Walk", "Run")
    with pytest.raises(gestures.GestureDataError, match=problem):
        gestures.parse_ts(edit(good))
