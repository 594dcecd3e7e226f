"""Sensor subscriptions that the executor never wakes for, shared by the nodes of one process.

Why: rclpy's executor spends about a millisecond of CPU per wake-up building and scanning its
wait set, against some 20 us to take and deserialize a small message, and it wakes once per
message: ~135 wake-ups a second at the shipped rates (100 of them IMU) were more than half of
inference_node's CPU. Here a sensor subscription is an rcl subscription on a node's handle
that is not in the node's entity list, so no executor waits on it: messages wait in the
middleware's KEEP_LAST history, sized for the stream, until a node drains them, once per
prediction or per watchdog period, taking everything queued in one go.

A frame that is never taken costs almost nothing (measured: a 640x480 bgr8 stream at 30 Hz
costs a subscriber that never takes it 0.005 core over shared memory, and ~2.5 ms per frame
taken), so a depth-1 camera queue drained at the prediction rate pays for only the frames a
prediction uses.

`SensorFeed` keeps one `PolledTopic` per (resolved topic, type, reliability) and hands every
taken message to every consumer of it: heartbeat_monitor and inference_node composed in one
process pay for each message once. Counters per topic: messages taken, messages the
publishers sent (from their sequence numbers) and messages the middleware reports lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rclpy.event_handler import QoSSubscriptionEventType, SubscriptionEventCallbacks
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import QoSProfile
from rclpy.type_support import check_is_valid_msg_type

from sentryfuse_ros.nodes.stamps import NS_PER_S

# A reception time further back than this is a system clock step, not a wait.
MAX_WAIT_NS = 5 * NS_PER_S


@dataclass(frozen=True)
class Delivery:
    """One taken message and when it reached this process (rmw's reception time)."""

    msg: Any
    received_ns: int  # system clock (time.time_ns), as rmw stamps it
    sequence: int  # the publisher's sequence number (0 where the middleware gives none)

    def arrival(self, now_monotonic: float, now_ros_ns: int) -> tuple[float, int]:
        """When it arrived on time.monotonic() and on the node's ROS clock. Handling comes later
        (a message waits in the queue until drained); that delay must neither age its stamp nor
        shift liveness."""
        waited_ns = min(max(0, time.time_ns() - self.received_ns), MAX_WAIT_NS)
        return now_monotonic - waited_ns * 1e-9, now_ros_ns - waited_ns


@dataclass
class TopicCounters:
    taken: int = 0
    lost: int = 0  # reported by the middleware (a sample that never arrived)
    _sequences: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # publisher -> (first, last)

    def count(self, publisher: bytes, sequence: int) -> None:
        self.taken += 1
        first, _ = self._sequences.get(publisher, (sequence, sequence))
        self._sequences[publisher] = (min(first, sequence), sequence)

    @property
    def published(self) -> int:
        """Messages the publishers sent since we first heard each of them (taken, superseded in
        the queue or lost); equals `taken` where the middleware gives no sequence numbers."""
        span = sum(last - first + 1 for first, last in self._sequences.values())
        return max(span, self.taken)


class PolledTopic:
    """An rcl subscription no executor waits on; `take()` empties its queue."""

    def __init__(self, node, msg_type, topic: str, qos: QoSProfile):
        check_is_valid_msg_type(msg_type)  # also loads the type support rcl needs
        self.msg_type = msg_type
        self.topic = topic
        self.depth = qos.depth
        with node.handle:
            self._handle = _rclpy.Subscription(node.handle, msg_type, topic, qos.get_c_qos_profile(), None)
        self._lost_event = self._event(QoSSubscriptionEventType.RCL_SUBSCRIPTION_MESSAGE_LOST)
        self._incompatible_event = self._event(QoSSubscriptionEventType.RCL_SUBSCRIPTION_REQUESTED_INCOMPATIBLE_QOS)
        self.counters = TopicCounters()
        self.qos_problem = ""  # why a publisher on the topic cannot be matched, if one cannot

    def _event(self, event_type):
        """A middleware status polled at each take; None where the rmw does not support it."""
        try:
            return _rclpy.EventHandle(self._handle, event_type)
        except Exception:  # noqa: BLE001 - messages still arrive; only that status is unknown
            return None

    @property
    def handle(self):
        return self._handle

    def take(self) -> list[Delivery]:
        """Every queued message, oldest first."""
        taken = []
        while True:
            result = self._handle.take_message(self.msg_type, False)
            if result is None:
                break
            msg, info = result
            sequence = info.get("publication_sequence_number") or 0
            self.counters.count(bytes(info["publisher_gid"]["data"]), sequence)
            taken.append(Delivery(msg, info["received_timestamp"], sequence))
        if self._lost_event is not None:
            status = self._lost_event.take_event()
            if status is not None:
                self.counters.lost = status.total_count
        if self._incompatible_event is not None:
            status = self._incompatible_event.take_event()
            if status is not None and status.total_count_change:
                self.qos_problem = incompatible_qos_problem(status)
        return taken

    def destroy(self) -> None:
        for event in (self._lost_event, self._incompatible_event):
            if event is not None:
                event.destroy_when_not_in_use()
        self._handle.destroy_when_not_in_use()


def incompatible_qos_problem(status) -> str:
    kind = status.last_policy_kind
    return f"a publisher has incompatible QoS (policy {getattr(kind, 'name', kind)})"


Consumer = Callable[[list[Delivery]], None]


@dataclass(eq=False)
class Subscription:
    """One consumer's interest in a topic; pass it back to `SensorFeed.unsubscribe`."""

    key: tuple
    consumer: Consumer
    depth: int


class SensorFeed:
    """The polled sensor topics of one process, each shared by all its consumers.

    Subscriptions are made on the handle of the first consumer's node; `close()` destroys them
    (before the nodes are destroyed)."""

    def __init__(self):
        self._topics: dict[tuple, PolledTopic] = {}
        self._subscriptions: dict[tuple, list[Subscription]] = {}
        self._wait_set = None
        self._context = None

    def subscribe(self, node, msg_type, topic: str, qos: QoSProfile, consumer: Consumer) -> Subscription:
        """Deliver every message on `topic` (resolved by `node`, with its namespace and remaps)
        to `consumer`, queueing up to `qos.depth` of them between drains. Consumers whose QoS
        differs only in depth share one subscription of the larger depth."""
        key = (node.resolve_topic_name(topic), msg_type, qos.reliability, qos.deadline.nanoseconds)
        subscription = Subscription(key, consumer, qos.depth)
        existing = self._topics.get(key)
        if existing is None or existing.depth < qos.depth:
            if existing is not None:
                existing.destroy()  # a deeper queue is needed (at subscribe time, so little is lost)
            self._topics[key] = self._make_topic(node, msg_type, key, qos)
            self._context = node.context
            self._wait_set = None
        self._subscriptions.setdefault(key, []).append(subscription)
        return subscription

    def _make_topic(self, node, msg_type, key: tuple, qos: QoSProfile):
        return PolledTopic(node, msg_type, key[0], qos)

    def unsubscribe(self, subscription: Subscription) -> None:
        consumers = self._subscriptions.get(subscription.key, [])
        if subscription in consumers:
            consumers.remove(subscription)
        if not consumers:
            self._subscriptions.pop(subscription.key, None)
            topic = self._topics.pop(subscription.key, None)
            if topic is not None:
                topic.destroy()
            self._wait_set = None

    def topic(self, subscription: Subscription) -> PolledTopic:
        return self._topics[subscription.key]

    def drain(self, subscriptions=None) -> int:
        """Take everything queued on these consumers' topics (default: every topic) and hand
        it to every consumer of each; the number of messages taken."""
        keys = self._topics if subscriptions is None else dict.fromkeys(s.key for s in subscriptions)
        total = 0
        for key in keys:
            topic = self._topics.get(key)
            if topic is None:
                continue
            deliveries = topic.take()
            if deliveries:
                total += len(deliveries)
                for subscription in list(self._subscriptions.get(key, ())):
                    subscription.consumer(deliveries)
        return total

    def wait(self, timeout_s: float) -> bool:
        """Block (no CPU) until a message is queued on any topic or the timeout passes."""
        if not self._topics or timeout_s <= 0:
            return False
        if self._wait_set is None:
            self._wait_set = _rclpy.WaitSet(len(self._topics), 0, 0, 0, 0, 0, self._context.handle)
        wait_set = self._wait_set
        wait_set.clear_entities()
        for topic in self._topics.values():
            wait_set.add_subscription(topic.handle)
        wait_set.wait(int(timeout_s * NS_PER_S))
        return bool(wait_set.get_ready_entities("subscription"))

    def close(self) -> None:
        for topic in self._topics.values():
            topic.destroy()
        self._topics.clear()
        self._subscriptions.clear()
        self._wait_set = None




class _CallbackTopic:
    """The executor-driven alternative: an rclpy subscription whose callback delivers each
    message to every consumer as it is handled (one executor wake-up per message)."""

    def __init__(self, node, msg_type, topic: str, qos: QoSProfile, deliver: Callable[[list[Delivery]], None]):
        self.topic = topic
        self.depth = qos.depth
        self.counters = TopicCounters()
        self.qos_problem = ""
        self._node = node

        def on_message(msg, info) -> None:
            sequence = info.get("publication_sequence_number") or 0
            self.counters.count(bytes(info["publisher_gid"]["data"]), sequence)
            deliver([Delivery(msg, info["received_timestamp"], sequence)])

        def on_lost(status) -> None:
            self.counters.lost = status.total_count

        def on_incompatible(status) -> None:
            self.qos_problem = incompatible_qos_problem(status)

        events = SubscriptionEventCallbacks(
            message_lost=on_lost, incompatible_qos=on_incompatible, use_default_callbacks=False)
        self._subscription = node.create_subscription(msg_type, topic, on_message, qos, event_callbacks=events)

    def destroy(self) -> None:
        self._node.destroy_subscription(self._subscription)


class CallbackFeed(SensorFeed):
    """Same interface as SensorFeed, but the executor wakes for (and hands over) every message:
    `drain` and `wait` have nothing to do. Kept to measure against (`ingestion: callbacks`)."""

    def _make_topic(self, node, msg_type, key: tuple, qos: QoSProfile):
        return _CallbackTopic(node, msg_type, key[0], qos, lambda deliveries: self._deliver(key, deliveries))

    def _deliver(self, key: tuple, deliveries: list[Delivery]) -> None:
        for subscription in list(self._subscriptions.get(key, ())):
            subscription.consumer(deliveries)

    def drain(self, subscriptions=None) -> int:
        return 0

    def wait(self, timeout_s: float) -> bool:
        return False


INGESTION_MODES = {"polled": SensorFeed, "callbacks": CallbackFeed}


class FeedPool:
    """The feeds of one process, one per ingestion mode: nodes composed in a process share them
    (and so their subscriptions); a node on its own makes its own pool."""

    def __init__(self):
        self._feeds: dict[str, SensorFeed] = {}

    def get(self, mode: str) -> SensorFeed:
        if mode not in INGESTION_MODES:
            raise ValueError(f"ingestion must be one of {tuple(INGESTION_MODES)}, got {mode!r}")
        if mode not in self._feeds:
            self._feeds[mode] = INGESTION_MODES[mode]()
        return self._feeds[mode]

    def close(self) -> None:
        for feed in self._feeds.values():
            feed.close()
        self._feeds.clear()


def ingestion_problem(values) -> str | None:
    """Why this node's ingestion and executor parameters cannot work together, or None."""
    if values["ingestion"] == "callbacks" and values["executor"] == "events":
        # rclpy 9.1.2's EventsExecutor raises SystemError on a callback that takes MessageInfo,
        # and the callback feed needs each message's reception time and sequence number.
        return "ingestion 'callbacks' needs executor 'single_threaded' (the events executor cannot pass MessageInfo)"
    return None
