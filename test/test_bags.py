"""`sentryfuse record` and `sentryfuse replay` (sentryfuse_ros/bags): bad bags diagnosed without a
traceback; the simulator recorded with nothing lost and replayed byte for byte; a sqlite3 bag
written by rosbags plays. Every wait is bounded; no assertion on wall-clock timing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sentryfuse_ros import cli
from sentryfuse_ros.bags import types as bag_types
from sentryfuse_ros.bags.replay import open_bag, plan_playback
from sentryfuse_ros.bags.stamps import NS_PER_S, read_stamp, with_stamp

SIM = ("-m", "sentryfuse_ros.nodes.sensor_sim", "--ros-args", "-p", "source:=synthetic")
SENSOR_TOPICS = ("/camera/image_raw", "/imu/data", "/audio/chunk", "/battery/state")
T0 = 1_700_000_000 * NS_PER_S
STORE = bag_types.typestore()


# --- bags made by rosbags ------------------------------------------------------------------
def _header(ns: int, frame: str = "f"):
    T = STORE.types
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=ns // NS_PER_S, nanosec=ns % NS_PER_S),
                                    frame_id=frame)


def _image(ns: int, encoding: str = "mono8"):
    channels = 1 if encoding == "mono8" else 2
    return STORE.types["sensor_msgs/msg/Image"](
        header=_header(ns, "cam"), height=4, width=4, encoding=encoding, is_bigendian=0, step=4 * channels,
        data=np.arange(16 * channels, dtype=np.uint8))


def _imu(ns: int):
    T = STORE.types
    v3 = T["geometry_msgs/msg/Vector3"]
    return T["sensor_msgs/msg/Imu"](
        header=_header(ns, "imu"), orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9), angular_velocity=v3(x=0.1, y=0.2, z=0.3),
        angular_velocity_covariance=np.zeros(9), linear_acceleration=v3(x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.zeros(9))


def _audio(ns: int):
    return STORE.types["sentryfuse/msg/AudioChunk"](header=_header(ns, "mic"), sample_rate=16000, channels=1,
                                                     samples=np.linspace(-1, 1, 80, dtype=np.float32))


def write_bag(path, streams, storage=StoragePlugin.MCAP, duration_s=1.0, extra=None):
    """A bag of `streams` {topic: (msgtype, rate_hz, make(ns))}, stamps = log times, plus
    `extra(writer)` connections."""
    writer = Writer(path, version=9, storage_plugin=storage)
    writer.open()
    connections = {topic: writer.add_connection(topic, msgtype, typestore=STORE) for topic, (msgtype, _, _) in streams.items()}
    events = sorted((T0 + int(i * NS_PER_S / rate), topic)
                    for topic, (_, rate, _) in streams.items() for i in range(int(duration_s * rate)))
    for ns, topic in events:
        msgtype, _, make = streams[topic]
        writer.write(connections[topic], ns, bytes(STORE.serialize_cdr(make(ns), msgtype)))
    if extra:
        extra(writer)
    writer.close()
    return path


SMALL = {"/imu/data": ("sensor_msgs/msg/Imu", 50, _imu), "/camera/image_raw": ("sensor_msgs/msg/Image", 10, _image),
         "/audio/chunk": ("sentryfuse/msg/AudioChunk", 20, _audio)}


def _unknown_type(writer):
    """A connection of a type no package here has, with one message."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("int32 value", "acme_msgs/msg/Thing"))
    connection = writer.add_connection("/acme/thing", "acme_msgs/msg/Thing", typestore=store)
    writer.write(connection, T0, bytes(store.serialize_cdr(store.types["acme_msgs/msg/Thing"](value=7), "acme_msgs/msg/Thing")))


def _replay(*args):
    return cli.main(["replay", *map(str, args)])


# --- fast: no DDS ---------------------------------------------------------------------------
def test_stamps_are_rewritten_in_place_in_either_byte_order():
    for little in (True, False):
        data = bytes(STORE.serialize_cdr(_imu(T0 + 5), "sensor_msgs/msg/Imu", little_endian=little))
        assert read_stamp(data) == T0 + 5
        moved = with_stamp(data, 42 * NS_PER_S + 9)
        assert len(moved) == len(data) and moved[:4] == data[:4] and moved[12:] == data[12:]
        assert STORE.deserialize_cdr(moved, "sensor_msgs/msg/Imu").header.stamp.sec == 42
    assert bag_types.stamp_leads(bag_types.import_msg_class("std_msgs/msg/Header"))
    assert not bag_types.stamp_leads(bag_types.import_msg_class("std_msgs/msg/String"))


def _truncated(tmp_path):
    bag = write_bag(tmp_path / "cut", SMALL)
    storage = next(bag.glob("*.mcap"))
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    return bag


def _no_metadata(tmp_path):
    bag = write_bag(tmp_path / "nometa", SMALL)
    (bag / "metadata.yaml").unlink()
    return bag


def _only_unknown(tmp_path):
    writer = Writer(tmp_path / "unknown", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    _unknown_type(writer)
    writer.close()
    return tmp_path / "unknown"


def _not_a_bag(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    return path


BAD_BAGS = {
    "missing": (lambda tmp: tmp / "nowhere", [], "no such bag"),
    "not a bag": (_not_a_bag, [], "is not a rosbag2 bag"),
    "no metadata.yaml": (_no_metadata, [], "has no metadata.yaml"),
    "truncated mcap": (_truncated, [], "truncated or corrupt"),
    "none of the topics": (lambda tmp: write_bag(tmp / "b", SMALL), ["--topics", "/lidar/points"],
                           "none of the requested topics (/lidar/points) is in the bag; it has: /audio/chunk, /camera/image_raw, /imu/data"),
    "unknown type": (_only_unknown, [], "unknown message type acme_msgs/msg/Thing"),
    "image encoding": (lambda tmp: write_bag(tmp / "yuv", {"/camera/image_raw": ("sensor_msgs/msg/Image", 10, lambda ns: _image(ns, "yuv422"))}),
                       ["--strict"], "image encoding 'yuv422' is not one SentryFuse reads"),
}


@pytest.mark.parametrize("case", BAD_BAGS)
def test_a_bad_bag_is_a_clear_error_with_exit_status_2(case, tmp_path, capsys):
    make, options, expected = BAD_BAGS[case]
    assert _replay(make(tmp_path), *options) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_unknown_types_and_other_definitions_are_skipped_by_name_and_the_rest_plays(tmp_path):
    def extras(writer):
        _unknown_type(writer)
        imu = bag_types.local_definition("sensor_msgs/msg/Imu")[0]
        other = writer.add_connection("/old/imu", "sensor_msgs/msg/Imu", msgdef=imu, rihs01="RIHS01_" + "0" * 64)
        writer.write(other, T0, bytes(STORE.serialize_cdr(_imu(T0), "sensor_msgs/msg/Imu")))

    bag = write_bag(tmp_path / "mixed", SMALL, extra=extras)
    reader = open_bag(bag)
    plan = plan_playback(reader, None)
    assert sorted(t.topic for t in plan.play) == sorted(SMALL)
    assert "unknown message type acme_msgs/msg/Thing" in plan.skipped["/acme/thing"]
    assert "differs from this machine's" in plan.skipped["/old/imu"]
    assert any("/acme/thing" in w and "/old/imu" in w for w in plan.warnings)
    reader.close()


def test_an_unreadable_image_encoding_warns(tmp_path):
    bag = write_bag(tmp_path / "yuv", {"/camera/image_raw": ("sensor_msgs/msg/Image", 10, lambda ns: _image(ns, "yuv422"))})
    reader = open_bag(bag)
    plan = plan_playback(reader, None)
    assert [t.topic for t in plan.play] == ["/camera/image_raw"]
    assert any("'yuv422'" in w and "mono8" in w for w in plan.warnings)
    reader.close()


def test_record_refuses_to_overwrite(tmp_path, capsys):
    assert cli.main(["record", str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


# --- slow: processes over DDS ---------------------------------------------------------------
class RawListener:
    """Every message on `topics` as received bytes (raw subscriptions, deep queues)."""

    def __init__(self, node, topics: dict[str, str]):
        from sentryfuse_ros.bags.qos import record_qos

        self.node, self.received = node, defaultdict(list)
        self.subs = []
        for topic, msgtype in topics.items():
            spec = bag_types.default_spec(topic)
            self.subs.append(node.create_subscription(
                bag_types.import_msg_class(msgtype), topic,
                lambda data, topic=topic: self.received[topic].append((time.time_ns(), data)),
                record_qos(spec.kind if spec else bag_types.OUTPUT), raw=True))

    def listen(self, player, expected: dict[str, int], timeout: float = 60.0) -> None:
        """Spin while the player plays, then until `expected` counts arrived or nothing more comes."""
        import rclpy

        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            before = sum(map(len, self.received.values()))
            rclpy.spin_once(self.node, timeout_sec=0.05)
            if player.poll() is None:
                continue
            if all(len(self.received[t]) >= n for t, n in expected.items()):
                return
            if sum(map(len, self.received.values())) == before:  # nothing in the last 50 ms
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2.0:
                    return
            else:
                quiet_since = None


def _bag_messages(bag):
    from rosbags.rosbag2 import Reader

    messages = defaultdict(list)
    with Reader(bag) as reader:
        for connection, log_ns, data in reader.messages():
            messages[connection.topic].append((log_ns, bytes(data)))
        return messages, {c.topic: c.msgtype for c in reader.connections}


@pytest.mark.slow  # sensor_sim, a recorder and a player over DDS
def test_record_the_simulator_with_nothing_lost_and_replay_it_byte_for_byte(processes, ros_node, tmp_path):
    bag, summary = tmp_path / "sim", tmp_path / "record.json"
    sim = processes.start(*SIM, name="sim")
    recorder = processes.start("-m", "sentryfuse_ros.cli", "record", str(bag), "--duration", "5",
                               "--json", str(summary), name="record")
    assert recorder.wait(timeout=60) == 0, processes.log(recorder) + processes.log(sim)
    processes.stop(sim)  # the replay must be the only publisher

    counts = json.loads(summary.read_text())
    stored = json.loads(yaml.safe_load((bag / "metadata.yaml").read_text())
                        ["rosbag2_bagfile_information"]["custom_data"]["sentryfuse.record"])
    assert stored["topics"] == counts["topics"]
    messages, types = _bag_messages(bag)
    for topic in (*SENSOR_TOPICS, "/sentryfuse/ground_truth"):
        row = counts["topics"][topic]
        assert row["recorded"] > 0, f"{topic}: nothing recorded\n{processes.log(recorder)}"
        assert row["recorded"] == row["published"] == len(messages[topic]), f"{topic}: {row}"
    assert counts["lost"] == 0 and counts["cpu_cores"] > 0
    # Our msg/ definitions (the bag's) are the ones the publisher was built with (same type hash).
    assert "differs" not in processes.log(recorder)
    assert types["/audio/chunk"] == "sentryfuse/msg/AudioChunk" and types["/camera/image_raw"] == "sensor_msgs/msg/Image"
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap"
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"] for t in metadata["topics_with_message_count"]}
    assert qos["/imu/data"][0]["reliability"] == "best_effort"
    assert qos["/sentryfuse/ground_truth"][0]["durability"] == "transient_local"

    # Replay (restamped, the default) to a listener that was there first.
    listener = RawListener(ros_node, {t: types[t] for t in messages})
    report = tmp_path / "replay.json"
    player = processes.start("-m", "sentryfuse_ros.cli", "replay", str(bag), "--wait-for-subscribers", "30",
                             "--json", str(report),
                             name="replay")
    listener.listen(player, {t: len(m) for t, m in messages.items()})
    assert player.wait(timeout=5) == 0, processes.log(player)
    played = json.loads(report.read_text())
    assert played["timing_error"]["messages"] == sum(len(m) for m in messages.values())
    assert {"p50_ms", "p99_ms"} <= set(played["timing_error"])
    for topic, recorded in messages.items():
        got = listener.received[topic]
        assert len(got) == len(recorded), f"{topic}: {len(got)} of {len(recorded)} arrived"
        shifts = set()
        for (received_ns, data), (_, original) in zip(got, recorded):
            # Every byte as recorded, but the header stamp: moved by one constant to now.
            assert data[:4] == original[:4] and data[12:] == original[12:], topic
            shifts.add(read_stamp(data) - read_stamp(original))
            assert read_stamp(data) < received_ns + NS_PER_S // 2
        assert len(shifts) == 1, f"{topic}: stamps not shifted by one constant"


@pytest.mark.slow  # a player over DDS
def test_a_sqlite3_bag_written_by_rosbags_plays_its_known_topics(processes, ros_node, tmp_path):
    bag = write_bag(tmp_path / "db3bag", SMALL, storage=StoragePlugin.SQLITE3, extra=_unknown_type)
    assert next(bag.glob("*.db3"))
    messages, _ = _bag_messages(bag)
    listener = RawListener(ros_node, {t: m for t, (m, _, _) in SMALL.items()})
    player = processes.start("-m", "sentryfuse_ros.cli", "replay", str(bag), "--keep-stamps", "--wait-for-subscribers", "30",
                             name="replay")
    listener.listen(player, {t: len(messages[t]) for t in SMALL})
    assert player.wait(timeout=5) == 0, processes.log(player)
    log = processes.log(player)
    assert "skipped: /acme/thing (unknown message type acme_msgs/msg/Thing)" in log
    for topic in SMALL:
        got, recorded = [data for _, data in listener.received[topic]], [data for _, data in messages[topic]]
        assert len(got) == len(recorded), f"{topic}: {len(got)} of {len(recorded)} arrived, missing {[i for i, d in enumerate(recorded) if d not in got]}"
        assert got == recorded, f"{topic}: payloads differ at {[i for i, (a, b) in enumerate(zip(got, recorded)) if a != b]}"


def test_cli_lists_record_and_replay():
    out = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    assert "record" in out and "replay" in out
