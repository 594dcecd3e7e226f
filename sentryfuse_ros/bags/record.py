"""`sentryfuse record OUT`: record SentryFuse topics into a rosbag2 bag (MCAP storage).

Records, by default, the sensor topics (camera/image_raw, imu/data, audio/chunk, battery/state),
sentryfuse/modality_state, sentryfuse/prediction and the label topic sentryfuse/ground_truth,
resolved in --namespace. Each message is stored as the serialized CDR bytes it arrived as
(a raw take: never deserialized or serialized again).

How: no executor. The subscriptions are rcl subscriptions that nothing waits on (as
nodes/sensor_feed.py does for the nodes); every 100 ms the recorder takes everything queued on
each of them in one go. An executor wakes once per message and pays ~1 ms of CPU per wake-up
(136 a second at the shipped rates); a drain every 100 ms pays for ten wake-ups a second.
Sensor topics are subscribed best effort, the latched state topics (modality_state,
ground_truth) reliable + transient local, prediction reliable, all with a 1000-deep queue: 10 s
of a 100 Hz IMU between two drains, so the queue never overflows.

Log time: each message's reception time as the middleware stamped it (MessageInfo
`received_timestamp`), as `ros2 bag record` does. Not the publisher's `source_timestamp`: that is
on the publishing machine's clock, and a bag mixing several machines' clocks would replay
out of order; the reception time is on this machine's clock for every topic. It is set when
the message reaches this process, not when the recorder takes it from the queue, so the
100 ms drain period does not show in it. Messages are written in log-time order.

Counts: per topic, messages recorded and messages its publishers sent (the span of each
publisher's publication sequence numbers since the first message heard from it); their
difference is what was lost on the way (or overflowed a queue). The summary is printed at the
end and stored in the bag's custom_data (key `sentryfuse.record`, JSON).

Ctrl-C, SIGTERM or --duration end the recording: a last drain, then the writer is closed (in a
`finally`), so every message taken is in the bag and the bag is complete (index, metadata.yaml).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sentryfuse_ros.bags import types as bag_types
from sentryfuse_ros.bags.errors import BagError, report, warn

COMMAND = "record"
DRAIN_PERIOD_S = 0.1
DISCOVERY_PERIOD_S = 1.0
STORAGES = ("mcap", "sqlite3")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    defaults = ", ".join(spec.topic for spec in bag_types.DEFAULT_TOPICS)
    parser.add_argument("out", metavar="OUT", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC",
                        help=f"topics to record (default: {defaults}); a topic of another type is "
                             "recorded once a publisher shows its type")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C or SIGTERM)")
    parser.add_argument("--namespace", default="", metavar="NS",
                        help="namespace the relative topic names are resolved in, e.g. robot1")
    parser.add_argument("--storage", choices=STORAGES, default="mcap", help="rosbag2 storage (default: mcap)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the summary as JSON here")


@dataclass
class TopicRecord:
    """One recorded topic: its subscription and counts."""

    topic: str  # resolved
    msgtype: str
    kind: str | None  # None: not a default topic (QoS adapted to its publishers)
    cls: object = None
    handle: object = None
    incompatible: object = None
    connection: object = None
    recorded: int = 0
    qos_problem: str = ""
    unusable: str = ""  # why it cannot be recorded (type unknown here)
    _sequences: dict = field(default_factory=dict)  # publisher gid -> [first, last]

    def count(self, info: dict) -> None:
        self.recorded += 1
        sequence = info.get("publication_sequence_number") or 0
        gid = bytes(info["publisher_gid"]["data"])
        span = self._sequences.get(gid)
        if span is None:
            self._sequences[gid] = [sequence, sequence]
        else:
            span[0], span[1] = min(span[0], sequence), max(span[1], sequence)

    @property
    def published(self) -> int:
        """Messages its publishers sent since the first one heard from each (recorded where the
        middleware gives no sequence numbers)."""
        if any(first == 0 for first, _ in self._sequences.values()):
            return self.recorded
        return max(self.recorded, sum(last - first + 1 for first, last in self._sequences.values()))


def resolve(name: str, namespace: str) -> str:
    if name.startswith("/"):
        return name
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{name}"


def plan_topics(topics: list[str] | None, namespace: str) -> list[TopicRecord]:
    """What to record: each topic resolved, with its type where it is a default topic."""
    if topics is None:
        return [TopicRecord(resolve(s.topic, namespace), s.msgtype, s.kind) for s in bag_types.DEFAULT_TOPICS]
    planned, seen = [], set()
    for name in topics:
        if not name.strip("/"):
            raise BagError(f"topic name {name!r} is empty")
        topic = resolve(name, namespace)
        if topic in seen:
            continue
        seen.add(topic)
        spec = bag_types.default_spec(name)
        planned.append(TopicRecord(topic, spec.msgtype, spec.kind) if spec else TopicRecord(topic, "", None))
    return planned


def run(args: argparse.Namespace) -> int:
    try:
        if args.out.exists():
            raise BagError(f"{args.out} exists already; refusing to overwrite it (choose a new OUT or remove it)")
        if args.duration < 0:
            raise BagError(f"--duration must be >= 0, got {args.duration:g}")
        planned = plan_topics(args.topics, args.namespace)
    except BagError as error:
        return report(COMMAND, error)
    recorder = Recorder(args.out, planned, args.namespace, args.storage)
    try:
        summary = recorder.record(args.duration)
    except BagError as error:
        return report(COMMAND, error)
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


class Recorder:
    def __init__(self, out: Path, planned: list[TopicRecord], namespace: str = "", storage: str = "mcap"):
        self.out = out
        self.topics = planned
        self.namespace = namespace
        self.storage = storage
        self._stop = False
        self._pending: list = []  # heap of (log time, tie, topic, data)
        self._tie = itertools.count()
        self.writer = None
        self.node = None

    # --- set-up --------------------------------------------------------------------------
    def _subscribe(self, record: TopicRecord) -> None:
        from rclpy.event_handler import QoSSubscriptionEventType
        from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

        from sentryfuse_ros.bags.qos import adapted_record_qos, record_qos

        record.cls = bag_types.import_msg_class(record.msgtype)
        if record.cls is None:
            record.unusable = f"type {record.msgtype} is not available here"
            warn(COMMAND, f"{record.topic}: message type {record.msgtype} is unknown here; not recorded")
            return
        if record.kind is not None:
            qos = record_qos(record.kind)
        else:
            qos = adapted_record_qos([i.qos_profile for i in self.node.get_publishers_info_by_topic(record.topic)])
        with self.node.handle:
            record.handle = _rclpy.Subscription(self.node.handle, record.cls, record.topic, qos.get_c_qos_profile(), None)
        try:
            record.incompatible = _rclpy.EventHandle(
                record.handle, QoSSubscriptionEventType.RCL_SUBSCRIPTION_REQUESTED_INCOMPATIBLE_QOS)
        except Exception:  # noqa: BLE001 - the rmw does not report it: only that warning is lost
            record.incompatible = None

    def _discover(self) -> None:
        """Subscribe to the requested topics of no known type once a publisher shows the type."""
        waiting = [r for r in self.topics if not r.msgtype]
        if not waiting:
            return
        types = dict(self.node.get_topic_names_and_types())
        for record in waiting:
            names = types.get(record.topic)
            if names:
                record.msgtype = bag_types.normalise_msgtype(names[0])
                self._subscribe(record)

    def _open_writer(self):
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        try:
            writer = Writer(self.out, version=Writer.VERSION_LATEST, storage_plugin=plugin)
            writer.open()
        except (WriterError, OSError) as error:
            raise BagError(f"cannot create the bag {self.out}: {error}") from None
        return writer

    # --- recording -----------------------------------------------------------------------
    def _connection(self, record: TopicRecord):
        """The bag connection of a topic, added at its first message with the QoS its publishers
        offer and the definition this machine has of its type."""
        from sentryfuse_ros.bags.qos import to_bag_qos

        infos = self.node.get_publishers_info_by_topic(record.topic)
        offered = [to_bag_qos(i.qos_profile) for i in infos]
        published_hashes = {str(i.topic_type_hash) for i in infos if str(i.topic_type_hash).startswith("RIHS01_")}
        local = bag_types.local_definition(record.msgtype)
        if local is not None:
            msgdef, rihs01 = local
            if published_hashes and rihs01 not in published_hashes:
                warn(COMMAND, f"{record.topic}: the publisher's definition of {record.msgtype} "
                              f"({', '.join(sorted(published_hashes))}) differs from this machine's ({rihs01})")
        else:
            msgdef, rihs01 = "", next(iter(sorted(published_hashes)), "")
            warn(COMMAND, f"{record.topic}: no definition of {record.msgtype} known here; the bag stores "
                          "its messages without one")
        return self.writer.add_connection(record.topic, record.msgtype, msgdef=msgdef, rihs01=rihs01,
                                          offered_qos_profiles=offered)

    def _drain(self) -> None:
        """Take everything queued; write, in log-time order, what was received before this drain
        began (whatever arrives later is taken by the next drain, so nothing older can follow)."""
        watermark = time.time_ns()
        for record in self.topics:
            handle = record.handle
            if handle is None:
                continue
            while True:
                taken = handle.take_message(record.cls, True)
                if taken is None:
                    break
                data, info = taken
                record.count(info)
                stamp = info.get("received_timestamp") or time.time_ns()
                heapq.heappush(self._pending, (stamp, next(self._tie), record, data))
            if record.incompatible is not None:
                status = record.incompatible.take_event()
                if status is not None and status.total_count_change:
                    kind = status.last_policy_kind
                    record.qos_problem = f"a publisher offers incompatible QoS ({getattr(kind, 'name', kind)})"
                    warn(COMMAND, f"{record.topic}: {record.qos_problem}; its messages are not recorded")
        self._write_until(watermark)

    def _write_until(self, watermark: int | None) -> None:
        pending = self._pending
        while pending and (watermark is None or pending[0][0] < watermark):
            stamp, _, record, data = heapq.heappop(pending)
            if record.connection is None:
                record.connection = self._connection(record)
            self.writer.write(record.connection, stamp, data)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop = True

    def record(self, duration_s: float = 0.0) -> dict:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        self.writer = self._open_writer()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        closed = False
        try:
            self.node = rclpy.create_node("sentryfuse_record", namespace=self.namespace or None,
                                          start_parameter_services=False)
            for record in self.topics:
                if record.msgtype:
                    self._subscribe(record)
            self._discover()
            print(f"sentryfuse record: recording {len(self.topics)} topics into {self.out} "
                  f"({'for %g s' % duration_s if duration_s else 'until Ctrl-C'})", file=sys.stderr, flush=True)
            cpu0, t0 = _cpu_s(), time.monotonic()
            deadline = t0 + duration_s if duration_s > 0 else float("inf")
            next_drain, next_discovery = t0 + DRAIN_PERIOD_S, t0 + DISCOVERY_PERIOD_S
            while not self._stop:
                now = time.monotonic()
                if now >= deadline:
                    break
                wake = min(next_drain, deadline)
                if wake > now:
                    time.sleep(min(wake - now, DRAIN_PERIOD_S))
                    continue
                self._drain()
                next_drain += DRAIN_PERIOD_S
                if next_drain < now:  # held up: drain again at once, but no burst of catch-ups
                    next_drain = now + DRAIN_PERIOD_S
                if now >= next_discovery:
                    self._discover()
                    next_discovery = now + DISCOVERY_PERIOD_S
            self._drain()
            self._write_until(None)
            wall_s, cpu_s = time.monotonic() - t0, _cpu_s() - cpu0
            summary = self._summary(wall_s, cpu_s)
            self.writer.set_custom_data("sentryfuse.record", json.dumps(summary, separators=(",", ":")))
            self.writer.close()
            closed = True
            return summary
        finally:
            if not closed:
                # An error above: still keep everything taken so far, in a complete bag.
                try:
                    self._write_until(None)
                    self.writer.close()
                except Exception as error:  # noqa: BLE001
                    warn(COMMAND, f"could not finish the bag {self.out}: {error}")
            self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _shutdown(self) -> None:
        import rclpy

        for record in self.topics:
            for entity in (record.incompatible, record.handle):
                if entity is not None:
                    entity.destroy_when_not_in_use()
        if self.node is not None:
            self.node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

    def _summary(self, wall_s: float, cpu_s: float) -> dict:
        start, end = self.writer.min_timestamp, self.writer.max_timestamp
        total = sum(r.recorded for r in self.topics)
        return {
            "bag": str(self.out),
            "storage": self.storage,
            "log_time": "reception (rmw received_timestamp)",
            "wall_s": round(wall_s, 3),
            "bag_duration_s": round(max(0, end - start) / 1e9, 3) if total else 0.0,
            "messages": total,
            "lost": sum(r.published - r.recorded for r in self.topics),
            "cpu_cores": round(cpu_s / wall_s, 4) if wall_s > 0 else 0.0,
            "cpu_s": round(cpu_s, 3),
            "topics": {
                r.topic: {"type": r.msgtype or "?", "recorded": r.recorded, "published": r.published,
                          "lost": r.published - r.recorded,
                          **({"problem": r.unusable or r.qos_problem} if r.unusable or r.qos_problem else {})}
                for r in self.topics
            },
        }


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def print_summary(summary: dict) -> None:
    width = max(len(t) for t in summary["topics"]) if summary["topics"] else 10
    print(f"bag {summary['bag']} ({summary['storage']}): {summary['messages']} messages over "
          f"{summary['bag_duration_s']:.1f} s (recorded for {summary['wall_s']:.1f} s); log time = "
          f"{summary['log_time']}")
    print(f"{'topic':<{width}}  {'type':<30} {'recorded':>9} {'published':>9} {'lost':>6}")
    for topic, row in summary["topics"].items():
        note = f"  ({row['problem']})" if "problem" in row else ("  (nothing received)" if not row["published"] else "")
        print(f"{topic:<{width}}  {row['type']:<30} {row['recorded']:>9} {row['published']:>9} {row['lost']:>6}{note}")
    print(f"lost in total: {summary['lost']}; record CPU: {summary['cpu_cores']:.3f} cores "
          f"({summary['cpu_s']:.2f} s user+sys over {summary['wall_s']:.1f} s)")
    if not summary["messages"]:
        warn(COMMAND, "no message was recorded: is anything publishing on these topics "
                      "(same ROS_DOMAIN_ID, namespace)?")
