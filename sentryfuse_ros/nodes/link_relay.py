"""link_relay: forwards topics as a simulated network link with latency, random loss and outages.

Offloading to a base station has to be tested over a slow, lossy link, and this kernel has no
netem qdisc to make one, so the link is simulated here, between topic pairs: the robot side
publishes on IN, the base side listens on OUT (and the other way for replies). An outage of the
network itself, which DDS notices too, is netns.py's veth taken down.

Messages are forwarded as serialized bytes (raw subscriptions), never deserialized, so the relay
costs the same for any type. Each is delayed by `latency_s` on one worker thread, which sleeps
until the next one is due (a heap ordered by due time), never polls. A route never reorders its
messages, also when the latency is lowered while some are on their way. `drop_probability`
drops each message independently (seeded by `seed`); `down` drops everything, also what is
still on its way. Both, and the latency, can be changed at runtime.

Usage: python -m sentryfuse_ros.nodes.link_relay --ros-args
    -p "routes:=[sentryfuse/offload/request>base/offload/request>sentryfuse/msg/OffloadRequest]"
    -p latency_s:=0.05 -p drop_probability:=0.1
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import NameValidationException, ParameterException, ParameterUninitializedException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from sentryfuse_ros.nodes.params import ParamSpec, declare_parameters, first_problem
from sentryfuse_ros.nodes.qos import RELIABILITIES, offload_qos, reliable_qos

NODE_NAME = "link_relay"
QUEUE_DEPTH = 10  # reliable routes
ROUTES = "routes"
ROUTES_DESCRIPTION = ("Forwarded topic pairs, each 'IN_TOPIC>OUT_TOPIC>pkg/msg/Type', e.g. "
                      "'sentryfuse/offload/request>base/offload/request>sentryfuse/msg/OffloadRequest'")
LINK_PARAMS = (
    ParamSpec("latency_s", 0.0, "One-way delay added to every message (s)", minimum=0.0),
    ParamSpec("drop_probability", 0.0, "Probability that a message is lost, each independently",
              minimum=0.0, maximum=1.0),
    ParamSpec("down", False, "Link down: every message is lost, also those on their way"),
    ParamSpec("seed", 0, "Seed of the random losses", read_only=True),
    # The offload topics are best effort (nodes/qos.py offload_qos): a reliable relay would not
    # match their publishers.
    ParamSpec("reliability", "best_effort", "QoS of both ends of every route: best_effort (as the offload "
              "topics) or reliable", choices=RELIABILITIES, read_only=True),
)


class ConfigError(ValueError):
    """The node's parameters cannot make a relay; the message says why."""


@dataclass(eq=False)
class Route:
    name: str  # "IN>OUT", the key of its counts
    in_topic: str
    out_topic: str
    msg_type: type
    publisher: object = None
    last_due: float = 0.0  # of the latest message queued: none is due earlier (keeps the order)
    forwarded: int = 0
    dropped: int = 0


def message_type(type_name: str) -> type:
    """The message class of 'pkg/msg/Type'; ConfigError if there is none."""
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise ConfigError(f"message type {type_name!r} is not of the form pkg/msg/Type")
    package, _, name = parts
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError:
        raise ConfigError(f"message type {type_name!r}: no Python module {package}.msg (is the package built?)") from None
    if not hasattr(module, name):
        raise ConfigError(f"message type {type_name!r}: {package}.msg has no message {name}")
    return getattr(module, name)


def parse_route(entry: str) -> Route:
    """A Route from 'IN_TOPIC>OUT_TOPIC>pkg/msg/Type'; ConfigError saying what is wrong."""
    parts = [part.strip() for part in entry.split(">")]
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"route {entry!r} is not of the form IN_TOPIC>OUT_TOPIC>pkg/msg/Type")
    in_topic, out_topic, type_name = parts
    if in_topic == out_topic:
        raise ConfigError(f"route {entry!r} forwards a topic onto itself")
    return Route(f"{in_topic}>{out_topic}", in_topic, out_topic, message_type(type_name))


@dataclass(order=True)
class _InFlight:
    due: float
    sequence: int  # ties at equal due time: first in, first out
    route: Route = field(compare=False)
    data: bytes = field(compare=False)


class LinkRelay(Node):
    def __init__(self, **kwargs):
        """ConfigError if the parameters cannot make a relay."""
        super().__init__(NODE_NAME, **kwargs)
        self.specs = {spec.name: spec for spec in LINK_PARAMS}
        self._in_flight: list[_InFlight] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()  # guards _in_flight, _closed and the counts
        self._closed = False
        try:
            self.routes = self._declared_routes()
            self._connect()
        except ConfigError:
            # Half made: destroyed here, or rclpy's shutdown would call our destroy_node on it.
            super().destroy_node()
            raise
        self._apply(self.get_parameters(list(self.specs)))
        self._random = random.Random(self.get_parameter("seed").value)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply)
        self._worker = threading.Thread(target=self._deliver, name="link_relay_delay", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"forwarding {', '.join(route.name for route in self.routes)}; latency {self.latency_s:g} s, "
            f"drop probability {self.drop_probability:g}, link {'down' if self.down else 'up'}")

    def _declared_routes(self) -> list[Route]:
        try:
            self.declare_parameter(ROUTES, Parameter.Type.STRING_ARRAY,
                                   ParameterDescriptor(description=ROUTES_DESCRIPTION, read_only=True))
            declare_parameters(self, LINK_PARAMS)
            entries = self.get_parameter(ROUTES).value
        except ParameterUninitializedException:
            raise ConfigError(f"{ROUTES} is not set. {ROUTES_DESCRIPTION}") from None
        except ParameterException as error:
            raise ConfigError(str(error)) from None
        problem = first_problem(self.specs, {name: self.get_parameter(name).value for name in self.specs})
        if problem:
            raise ConfigError(problem)
        routes = [parse_route(entry) for entry in entries]
        names = [route.name for route in routes]
        if len(set(names)) != len(names):
            raise ConfigError(f"{ROUTES} lists a topic pair twice: {names}")
        return routes

    def _connect(self) -> None:
        qos = offload_qos() if self.get_parameter("reliability").value == "best_effort" else reliable_qos(QUEUE_DEPTH)
        try:
            for route in self.routes:
                route.publisher = self.create_publisher(route.msg_type, route.out_topic, qos)
                self.create_subscription(route.msg_type, route.in_topic, self._receiver(route), qos, raw=True)
        except NameValidationException as error:
            raise ConfigError(str(error)) from None

    # --- parameters ---------------------------------------------------------------------
    def _check_parameters(self, parameters) -> SetParametersResult:
        problem = first_problem(self.specs, {p.name: p.value for p in parameters})
        return SetParametersResult(successful=problem is None, reason=problem or "")

    def _apply(self, parameters) -> None:
        for parameter in parameters:
            spec = self.specs.get(parameter.name)
            if spec is not None and not spec.read_only:
                setattr(self, parameter.name, parameter.value)

    # --- forwarding ---------------------------------------------------------------------
    def _receiver(self, route: Route):
        def receive(data: bytes) -> None:
            lost = self.down or self._random.random() < self.drop_probability
            with self._condition:
                if lost:
                    route.dropped += 1
                    return
                route.last_due = max(time.monotonic() + self.latency_s, route.last_due)
                heapq.heappush(self._in_flight, _InFlight(route.last_due, next(self._sequence), route, data))
                self._condition.notify()

        return receive

    def _deliver(self) -> None:
        """Worker thread: publish each message when it is due, sleeping in between."""
        with self._condition:
            while True:
                while not self._closed and (not self._in_flight or self._in_flight[0].due > time.monotonic()):
                    timeout = self._in_flight[0].due - time.monotonic() if self._in_flight else None
                    self._condition.wait(timeout)
                if self._closed:
                    return
                message = heapq.heappop(self._in_flight)
                if self.down:
                    message.route.dropped += 1
                    continue
                self._condition.release()
                try:
                    published = self._publish(message)
                finally:
                    self._condition.acquire()
                if published:
                    message.route.forwarded += 1
                else:
                    message.route.dropped += 1

    def _publish(self, message: _InFlight) -> bool:
        try:
            message.route.publisher.publish(message.data)
            return True
        except Exception as error:  # loses this message, not the worker thread and all after it
            self.get_logger().error(f"{message.route.name}: could not publish: {error}")
            return False

    def counts(self) -> dict[str, dict[str, int]]:
        """Per route ("IN>OUT"): messages forwarded, and dropped (lost or failed to publish)."""
        with self._condition:
            return {r.name: {"forwarded": r.forwarded, "dropped": r.dropped} for r in self.routes}

    def destroy_node(self) -> None:
        with self._condition:
            self._closed = True
            in_flight = len(self._in_flight)
            self._condition.notify()
        self._worker.join()
        summary = "; ".join(f"{name}: {c['forwarded']} forwarded, {c['dropped']} dropped"
                            for name, c in self.counts().items())
        self.get_logger().info(f"{summary}; {in_flight} on their way discarded")
        super().destroy_node()


def _spin(executor: SingleThreadedExecutor, stop: threading.Event, failed: threading.Event) -> None:
    try:
        executor.spin()
    except BaseException:
        failed.set()
        raise
    finally:
        stop.set()


def main(args: list[str] | None = None) -> int:
    """Run the relay until Ctrl-C / SIGTERM; 1 with the reason logged if its parameters are bad.

    Spins on a thread while this one waits for the signal: with rclpy's own handlers the signal
    invalidates the context at once, and the counts logged as the node goes would fail to reach
    /rosout.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop, failed = threading.Event(), threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        node = LinkRelay()
    except ConfigError as error:
        rclpy.logging.get_logger(NODE_NAME).error(f"cannot start: {error}")
        rclpy.shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor, stop, failed), name="link_relay_spin")
    spinner.start()
    stop.wait()
    executor.shutdown()
    spinner.join()
    node.destroy_node()
    rclpy.shutdown()
    return 1 if failed.is_set() else 0


if __name__ == "__main__":
    raise SystemExit(main())
