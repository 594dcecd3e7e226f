"""`sentryfuse replay BAG`: play a rosbag2 bag with its recorded timing, so the nodes run without
sensors.

BAG is a rosbag2 directory (metadata.yaml + mcap or sqlite3 storage, as `sentryfuse record` or
anyone's `ros2 bag record` writes it) or a bare .mcap / .db3 file. Each message is published as
the serialized bytes stored in the bag, on its recorded topic, with the reliability and
durability its recorded publishers offered (bag metadata), else our nodes' QoS for that topic.

Timing: message i is due at t0 + (log_time_i - log_time_0) / rate on time.monotonic(), t0 being
the start of a pass; the player sleeps until each due time. The timing error (publish time -
due time) is measured for every message and its p50 / p99 / max are in the summary. Playing
starts --delay seconds (0.5) after the publishers are made, so that subscribers already running
are matched; --wait-for-subscribers S first waits (up to S) until every topic has one. After the
last message the publishers stay for 0.5 s (reliable ones until acknowledged): a best-effort
message still in shared memory would be lost with its publisher.

Header stamps (--restamp, the default without --clock): our nodes reject stamps older than 1 s,
so a recorded stamp would be refused live. A message that starts with a std_msgs/Header (every
sensor message, ModalityState, Prediction, and the Header label topic itself) gets the stamp
now + (recorded stamp - recorded start) / rate, "now" being the wall time at which the first
message of the pass is due and "recorded start" its log time: every stamp keeps its distance to
its message's log time (scaled by --rate), so stamp ages, the skew between the modalities and
the label's place among the sensor messages are as recorded. Only those 8 bytes change.
Stamps on another clock than the log times (a stamp more than 10 s from its log time: a robot
without synchronised clocks, or sim time) are shifted by their topic's first offset instead.
An unset (zero) stamp stays zero. --keep-stamps publishes the recorded stamps unchanged; it is
the default with --clock, where consumers run on the bag's time (use_sim_time) and the recorded
stamps are the right ones.

--clock [HZ] also publishes rosgraph_msgs/Clock on /clock (40 Hz by default): the bag's log time
at the moment, for nodes with use_sim_time.

A topic whose type is not available here, or whose recorded definition (type hash) differs
from this machine's, is skipped with a warning naming it; the other topics play. A bad bag
(missing, no metadata.yaml, truncated or corrupt storage, none of the requested topics, no
playable type) is an error naming the problem, exit status 2. A sensor_msgs/Image topic whose
encoding our preprocessing cannot read gets a warning (an error with --strict).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from sentryfuse_ros.bags import types as bag_types
from sentryfuse_ros.bags.errors import BagError, report, warn
from sentryfuse_ros.bags.stamps import read_stamp, with_stamp

COMMAND = "replay"
STORAGE_SUFFIXES = (".mcap", ".db3")
LOOKAHEAD = 512  # messages read ahead of the player while it waits for a due time
READ_SLACK_S = 0.002  # read ahead only while the next message is due later than this
OTHER_CLOCK_NS = 10 * 1_000_000_000
MAX_SLEEP_S = 0.2  # a signal is noticed at least this often
LINGER_S = 0.5  # after the last message, before the publishers are destroyed


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", metavar="BAG", type=Path, help="rosbag2 directory, or a .mcap / .db3 file")
    parser.add_argument("--rate", type=float, default=1.0, metavar="X", help="playback speed factor (default 1)")
    parser.add_argument("--loop", action="store_true", help="play the bag again and again until Ctrl-C")
    parser.add_argument("--clock", type=float, nargs="?", const=40.0, default=None, metavar="HZ",
                        help="also publish /clock (rosgraph_msgs/Clock) at HZ (default 40) with the bag's time")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics (default: all)")
    stamps = parser.add_mutually_exclusive_group()
    stamps.add_argument("--restamp", dest="restamp", action="store_true", default=None,
                        help="shift header stamps to now (default, unless --clock)")
    stamps.add_argument("--keep-stamps", dest="restamp", action="store_false",
                        help="publish the recorded header stamps (default with --clock)")
    parser.add_argument("--delay", type=float, default=0.5, metavar="S",
                        help="wait S seconds after creating the publishers, for subscribers to match (default 0.5)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="before playing, wait up to S seconds until every topic has a subscriber (then --delay)")
    parser.add_argument("--strict", action="store_true",
                        help="an image encoding our preprocessing cannot read is an error, not a warning")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the summary as JSON here")


# ------------------------------------------------------------------------------- the bag
def open_bag(path: Path):
    """An open rosbags Reader, or BagError naming what is wrong with `path`."""
    from rosbags.rosbag2 import Reader

    if not path.exists():
        raise BagError(f"{path}: no such bag (file or directory not found)")
    if path.is_dir():
        if not (path / "metadata.yaml").is_file():
            stores = sorted(p.name for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
            hint = f"; its storage file can be played directly: sentryfuse replay {path / stores[0]}" if len(stores) == 1 else ""
            raise BagError(f"{path} is not a rosbag2 bag: it has no metadata.yaml{hint}")
    elif path.suffix not in STORAGE_SUFFIXES:
        raise BagError(f"{path} is not a rosbag2 bag: expected a bag directory with metadata.yaml, "
                       f"or a {' or '.join(STORAGE_SUFFIXES)} storage file")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # noqa: BLE001 - rosbags raises several kinds; all mean: unreadable
        raise BagError(_unreadable(path, error)) from None
    return reader


def _unreadable(path: Path, error: BaseException) -> str:
    text = str(error) or type(error).__name__
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
    if any(f.suffix == ".mcap" for f in files) and any(word in text.lower() for word in ("magic", "footer", "summary", "truncat", "unexpected end", "could not read", "invalid")):
        return (f"{path}: the MCAP storage file is truncated or corrupt ({text}); was the recording killed "
                "before it could close the bag?")
    return f"{path}: cannot read the bag: {text}"


@dataclass
class PlayTopic:
    """A topic to play (one connection of the bag, or several of one topic and type)."""

    topic: str
    msgtype: str
    cls: object
    connections: list
    qos: object = None
    publisher: object = None
    restamp: bool = False
    skew_ns: int | None = None  # stamp - log time of its first stamped message, when on another clock
    published: int = 0


@dataclass
class Plan:
    play: list[PlayTopic]
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> why
    warnings: list[str] = field(default_factory=list)
    message_count: int = 0


def plan_playback(reader, topics: list[str] | None, strict: bool = False) -> Plan:
    """Which connections play, which are skipped and why; BagError when nothing can play."""
    connections = list(reader.connections)
    if not connections:
        raise BagError("the bag has no topics")
    in_bag = sorted({c.topic for c in connections})
    if topics:
        wanted = {t if t.startswith("/") else "/" + t for t in topics}
        missing = sorted(wanted - set(in_bag))
        connections = [c for c in connections if c.topic in wanted]
        if not connections:
            raise BagError(f"none of the requested topics ({', '.join(sorted(wanted))}) is in the bag; "
                           f"it has: {', '.join(in_bag)}")
    else:
        missing = []
    plan = Plan([])
    if missing:
        plan.warnings.append(f"not in the bag, not played: {', '.join(missing)}")
    grouped: dict[tuple[str, str], list] = {}
    for connection in connections:
        grouped.setdefault((connection.topic, bag_types.normalise_msgtype(connection.msgtype)), []).append(connection)
    for (topic, msgtype), group in grouped.items():
        why = _unplayable(msgtype, group)
        if why:
            plan.skipped[topic] = why
            continue
        cls = bag_types.import_msg_class(msgtype)
        plan.play.append(PlayTopic(topic, msgtype, cls, group))
    if plan.skipped:
        plan.warnings.append("skipped: " + "; ".join(f"{t} ({why})" for t, why in sorted(plan.skipped.items())))
    if not plan.play:
        raise BagError("no topic of the bag can be played here: "
                       + "; ".join(f"{t}: {why}" for t, why in sorted(plan.skipped.items())))
    plan.message_count = sum(c.msgcount for p in plan.play for c in p.connections)
    if plan.message_count == 0:
        raise BagError(f"the bag has no messages on {', '.join(p.topic for p in plan.play)}")
    _check_images(reader, plan, strict)
    return plan


def _unplayable(msgtype: str, connections: list) -> str:
    """Why messages of this type cannot be published here ('' if they can)."""
    formats = {getattr(c.ext, "serialization_format", "cdr") for c in connections}
    if formats != {"cdr"}:
        return f"serialization {', '.join(sorted(formats))} is not cdr"
    if bag_types.import_msg_class(msgtype) is None:
        return f"unknown message type {msgtype}"
    local = bag_types.local_definition(msgtype)
    digests = {c.digest for c in connections if c.digest and c.digest.startswith("RIHS01_")}
    if local is not None and digests and local[1] not in digests:
        return f"{msgtype} in the bag ({', '.join(sorted(digests))}) differs from this machine's ({local[1]})"
    return ""


def _check_images(reader, plan: Plan, strict: bool) -> None:
    """The encoding of each image topic's first frame, against what our preprocessing reads."""
    from rclpy.serialization import deserialize_message

    for topic in plan.play:
        if topic.msgtype != bag_types.IMAGE_TYPE:
            continue
        first = next(iter(reader.messages(connections=topic.connections)), None)
        if first is None:
            continue
        try:
            encoding = deserialize_message(bytes(first[2]), topic.cls).encoding
        except Exception as error:  # noqa: BLE001 - bytes that are not an Image
            raise BagError(f"{topic.topic}: the first message is not a valid sensor_msgs/Image ({error})") from None
        supported = _readable_encodings(encoding)
        if encoding not in supported:
            problem = (f"{topic.topic}: image encoding {encoding!r} is not one SentryFuse reads "
                       f"({', '.join(supported)}); inference_node and heartbeat_monitor will reject its frames")
            if strict:
                raise BagError(problem)
            plan.warnings.append(problem)


def _readable_encodings(encoding: str):
    """The image encodings data/preprocess.py reads. What sensor_sim makes (nodes/encode.py) is a
    subset of them: for those the answer needs no import of the preprocessing stack (torch and
    scipy, seconds of start-up)."""
    from sentryfuse_ros.nodes.encode import IMAGE_ENCODINGS as MADE

    if encoding in MADE:
        return MADE
    from sentryfuse_ros.data.preprocess import IMAGE_ENCODINGS

    return tuple(IMAGE_ENCODINGS)


# ------------------------------------------------------------------------------- playing
def run(args: argparse.Namespace) -> int:
    try:
        if not args.rate > 0:
            raise BagError(f"--rate must be > 0, got {args.rate:g}")
        if args.clock is not None and not args.clock > 0:
            raise BagError(f"--clock rate must be > 0 Hz, got {args.clock:g}")
        reader = open_bag(args.bag)
    except BagError as error:
        return report(COMMAND, error)
    try:
        plan = plan_playback(reader, args.topics, args.strict)
        for line in plan.warnings:
            warn(COMMAND, line)
        restamp = args.clock is None if args.restamp is None else args.restamp
        player = Player(reader, plan, rate=args.rate, restamp=restamp, clock_hz=args.clock)
        summary = player.play(loop=args.loop, delay_s=max(0.0, args.delay),
                              wait_for_subscribers_s=max(0.0, args.wait_for_subscribers))
    except BagError as error:
        return report(COMMAND, error)
    finally:
        reader.close()
    summary["bag"] = str(args.bag)
    summary["skipped"] = plan.skipped
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 2 if summary.get("error") else 0


class Player:
    def __init__(self, reader, plan: Plan, rate: float = 1.0, restamp: bool = True, clock_hz: float | None = None):
        self.reader = reader
        self.plan = plan
        self.rate = rate
        self.restamp = restamp
        self.clock_hz = clock_hz
        self._stop = False
        self._by_connection = {c.id: t for t in plan.play for c in t.connections}
        self._connections = [c for t in plan.play for c in t.connections]
        self.errors_ms: list[float] = []
        self.error: str = ""

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop = True

    def _sleep_until(self, due: float) -> None:
        while not self._stop:
            remaining = due - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, MAX_SLEEP_S))

    def _wait_for_subscribers(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._stop and time.monotonic() < deadline:
            lonely = [t.topic for t in self.plan.play if t.publisher.get_subscription_count() == 0]
            if not lonely:
                return
            time.sleep(0.05)
        if not self._stop:
            warn(COMMAND, f"no subscriber after {timeout_s:g} s on: {', '.join(lonely)}; playing anyway")

    def _linger(self, timeout_s: float = LINGER_S) -> None:
        """Let the last messages leave before the publishers go: a best-effort message still in
        a shared-memory segment is lost with its publisher; reliable ones are waited for."""
        from rclpy.duration import Duration
        from rclpy.qos import ReliabilityPolicy

        deadline = time.monotonic() + timeout_s
        for topic in self.plan.play:
            if topic.qos.reliability == ReliabilityPolicy.RELIABLE:
                left = max(0.0, deadline - time.monotonic())
                topic.publisher.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9)))
        time.sleep(max(0.0, deadline - time.monotonic()))

    def play(self, loop: bool = False, delay_s: float = 0.5, wait_for_subscribers_s: float = 0.0) -> dict:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from sentryfuse_ros.bags.qos import play_qos

        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = None
        passes = 0
        try:
            node = rclpy.create_node("sentryfuse_replay", start_parameter_services=False)
            for topic in self.plan.play:
                spec = bag_types.default_spec(topic.topic)
                offered = [q for c in topic.connections for q in getattr(c.ext, "offered_qos_profiles", [])]
                topic.qos = play_qos(offered, spec.kind if spec else None)
                topic.publisher = node.create_publisher(topic.cls, topic.topic, topic.qos)
                topic.restamp = self.restamp and bag_types.stamp_leads(topic.cls)
            clock_pub = None
            if self.clock_hz:
                from rclpy.qos import QoSProfile, ReliabilityPolicy
                from rosgraph_msgs.msg import Clock

                clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
            if wait_for_subscribers_s > 0:
                self._wait_for_subscribers(wait_for_subscribers_s)
            self._sleep_until(time.monotonic() + delay_s)
            cpu0, wall0 = _cpu_s(), time.monotonic()
            while not self._stop:
                passes += 1
                self._play_once(clock_pub)
                if not loop or self.error:
                    break
            wall_s, cpu_s = time.monotonic() - wall0, _cpu_s() - cpu0
            self._linger()
        finally:
            if node is not None:
                node.destroy_node()
            if rclpy.ok():
                rclpy.shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self._summary(passes, wall_s, cpu_s)

    def _play_once(self, clock_pub) -> None:
        messages = self.reader.messages(connections=self._connections)
        pending: deque = deque()
        exhausted = False

        def read_one() -> bool:
            nonlocal exhausted
            try:
                item = next(messages, None)
            except Exception as error:  # noqa: BLE001 - a corrupt chunk or record: stop, say where
                self.error = f"the bag is corrupt after {sum(t.published for t in self.plan.play)} messages: {error}"
                item = None
            if item is None:
                exhausted = True
                return False
            pending.append(item)
            return True

        if not read_one():
            return
        first_log = pending[0][1]
        # The first message is due a little after now, so that it is not late already.
        t0 = time.monotonic() + 0.005
        wall0 = time.time_ns() + 5_000_000
        rate = self.rate
        clock_period = 1.0 / self.clock_hz if clock_pub is not None else None
        next_clock = t0
        errors = self.errors_ms
        while pending and not self._stop:
            connection, log_time, data = pending[0]
            due = t0 + (log_time - first_log) / 1e9 / rate
            while clock_period is not None and next_clock <= due and not self._stop:
                self._sleep_until(next_clock)
                self._publish_clock(clock_pub, first_log + int((time.monotonic() - t0) * rate * 1e9))
                next_clock += clock_period
            while not exhausted and len(pending) < LOOKAHEAD and due - time.monotonic() > READ_SLACK_S:
                read_one()
            self._sleep_until(due)
            if self._stop:
                break
            pending.popleft()
            topic = self._by_connection[connection.id]
            if not isinstance(data, bytes):
                data = bytes(data)
            if topic.restamp:
                data = self._restamped(topic, data, log_time, first_log, wall0)
            errors.append((time.monotonic() - due) * 1e3)
            topic.publisher.publish(data)
            topic.published += 1
            if not pending and not exhausted:
                read_one()

    def _restamped(self, topic: PlayTopic, data: bytes, log_time: int, first_log: int, wall0: int) -> bytes:
        stamp = read_stamp(data)
        if not stamp:
            return data
        if topic.skew_ns is None:
            skew = stamp - log_time
            topic.skew_ns = skew if abs(skew) > OTHER_CLOCK_NS else 0
        return with_stamp(data, wall0 + int((stamp - topic.skew_ns - first_log) / self.rate))

    @staticmethod
    def _publish_clock(publisher, bag_ns: int) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        sec, nanosec = divmod(bag_ns, 1_000_000_000)
        publisher.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))

    def _summary(self, passes: int, wall_s: float, cpu_s: float) -> dict:
        import numpy as np

        errors = np.asarray(self.errors_ms, dtype=np.float64)
        timing = ({"messages": int(errors.size), "p50_ms": round(float(np.percentile(errors, 50)), 3),
                   "p99_ms": round(float(np.percentile(errors, 99)), 3), "max_ms": round(float(errors.max()), 3)}
                  if errors.size else {"messages": 0})
        return {
            "rate": self.rate,
            "passes": passes,
            "restamp": self.restamp,
            "clock_hz": self.clock_hz,
            "wall_s": round(wall_s, 3),
            "published": sum(t.published for t in self.plan.play),
            "cpu_cores": round(cpu_s / wall_s, 4) if wall_s > 0 else 0.0,
            "timing_error": timing,
            "topics": {t.topic: {"type": t.msgtype, "published": t.published,
                                 "restamped": t.restamp} for t in self.plan.play},
            **({"error": self.error} if self.error else {}),
        }


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def print_summary(summary: dict) -> None:
    width = max(len(t) for t in summary["topics"])
    print(f"replayed {summary['bag']}: {summary['published']} messages in {summary['passes']} pass(es) at rate "
          f"{summary['rate']:g} over {summary['wall_s']:.1f} s; stamps "
          f"{'restamped to now' if summary['restamp'] else 'as recorded'}"
          f"{'; /clock at %g Hz' % summary['clock_hz'] if summary['clock_hz'] else ''}")
    print(f"{'topic':<{width}}  {'type':<30} {'published':>9}")
    for topic, row in summary["topics"].items():
        print(f"{topic:<{width}}  {row['type']:<30} {row['published']:>9}")
    for topic, why in summary.get("skipped", {}).items():
        print(f"{topic:<{width}}  skipped: {why}")
    timing = summary["timing_error"]
    if timing["messages"]:
        print(f"timing error (publish - due): p50 {timing['p50_ms']:.3f} ms, p99 {timing['p99_ms']:.3f} ms, "
              f"max {timing['max_ms']:.3f} ms over {timing['messages']} messages; "
              f"replay CPU: {summary['cpu_cores']:.3f} cores")
    if summary.get("error"):
        print(f"sentryfuse {COMMAND}: error: {summary['error']}", file=sys.stderr)

