"""link_relay as a separate process over DDS: delay and order on two routes of two types, outages
and random loss set at runtime, parameter checks, counts at shutdown, bad routes; in this process,
its counts and route parsing. Every wait is bounded; delays are only bounded below (a busy machine
may add to them)."""

import re
import signal
import time

import pytest
import rclpy
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from conftest import must_call, wait_for
from sentryfuse.msg import BaseStationStatus
from sentryfuse_ros.nodes.link_relay import ConfigError, LinkRelay, parse_route
from sentryfuse_ros.nodes.qos import reliable_qos

# Reliable ends: the test counts every message (the offload topics themselves are best effort).
RELAY = ("-m", "sentryfuse_ros.nodes.link_relay", "--ros-args", "-p", "reliability:=reliable")
STARTUP_S = 30.0  # a fresh interpreter with rclpy, and discovery, on two busy cores
ARRIVAL_S = 10.0
HEADER_ROUTE = "robot/header>base/header>std_msgs/msg/Header"
STATUS_ROUTE = "base/status>robot/status>sentryfuse/msg/BaseStationStatus"
PROBE = "probe"


class LinkEnds:
    """The test's ends of one route: a publisher on its IN topic, and what arrives on its OUT
    topic. Messages carry a label (Header frame_id); probes, sent until the route is known to
    work end to end, are counted, not kept."""

    def __init__(self, node, route: str, spin=None):
        """spin: how to let callbacks run (default: spin `node` once)."""
        in_topic, out_topic, type_name = route.split(">")
        self.is_header = type_name == "std_msgs/msg/Header"
        msg_type = Header if self.is_header else BaseStationStatus
        self.spin = spin or (lambda: rclpy.spin_once(node, timeout_sec=0.05))
        self.publisher = node.create_publisher(msg_type, in_topic, reliable_qos(10))
        self.subscription = node.create_subscription(msg_type, out_topic, self._received, reliable_qos(10))
        self.published = 0
        self.sent: dict[str, float] = {}
        self.arrivals: list[tuple[str, float]] = []
        self.probes_sent = self.probes_arrived = 0

    def _received(self, message) -> None:
        label = message.frame_id if self.is_header else message.header.frame_id
        if label == PROBE:
            self.probes_arrived += 1
        else:
            self.arrivals.append((label, time.monotonic()))

    def send(self, label: str) -> None:
        header = Header(frame_id=label)
        self.sent[label] = time.monotonic()
        self.publisher.publish(header if self.is_header else BaseStationStatus(header=header, task="t"))
        self.published += 1

    def prime(self) -> bool:
        """Probe until a probe came through the relay (both its ends discovered), then wait for
        the probes still on their way."""
        matched = wait_for(lambda: self.publisher.get_subscription_count() > 0
                           and self.subscription.get_publisher_count() > 0, STARTUP_S, spin=self.spin)

        def probe_arrived() -> bool:
            if self.probes_arrived == 0:
                self.send(PROBE)
                self.probes_sent += 1
            return self.probes_arrived > 0

        return (matched and wait_for(probe_arrived, STARTUP_S, spin=self.spin)
                and wait_for(lambda: self.probes_arrived == self.probes_sent, ARRIVAL_S, spin=self.spin))

    def labels(self) -> list[str]:
        return [label for label, _ in self.arrivals]


def start_relay(processes, *routes: str, **params):
    args = [*RELAY, "-p", f"routes:=[{','.join(routes)}]"]
    for name, value in params.items():
        args += ["-p", f"{name}:={value}"]
    return processes.start(*args, name="relay")


def set_parameter(node, name: str, value):
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return must_call(node, SetParameters, "/link_relay/set_parameters", request).results[0]


def stopped_log(processes, relay) -> str:
    """The relay's log after a SIGTERM, which it must survive with exit status 0."""
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=20) == 0, processes.log(relay)
    return processes.log(relay)


def route_counts(log: str, route: str) -> tuple[int, int]:
    """(forwarded, dropped) of `route` in the relay's shutdown log."""
    name = ">".join(route.split(">")[:2])
    found = re.search(rf"{re.escape(name)}: (\d+) forwarded, (\d+) dropped", log)
    assert found, log
    return int(found[1]), int(found[2])


@pytest.mark.slow  # a relay process over DDS
def test_two_routes_delay_in_order_and_count(processes, ros_node):
    latency = 0.3
    relay = start_relay(processes, HEADER_ROUTE, STATUS_ROUTE, latency_s=latency)
    headers, statuses = LinkEnds(ros_node, HEADER_ROUTE), LinkEnds(ros_node, STATUS_ROUTE)
    assert headers.prime() and statuses.prime(), processes.log(relay)

    labels = [str(i) for i in range(20)]
    for label in labels:
        headers.send(label)
        if int(label) % 4 == 0:
            statuses.send(label)
        headers.spin()
    assert wait_for(lambda: len(headers.arrivals) == 20 and len(statuses.arrivals) == 5, ARRIVAL_S,
                    spin=headers.spin), (headers.labels(), statuses.labels())
    assert headers.labels() == labels
    assert statuses.labels() == labels[::4]
    for ends in (headers, statuses):
        delays = [arrived - ends.sent[label] for label, arrived in ends.arrivals]
        assert min(delays) >= latency, delays

    log = stopped_log(processes, relay)
    assert route_counts(log, HEADER_ROUTE) == (headers.published, 0)
    assert route_counts(log, STATUS_ROUTE) == (statuses.published, 0)


@pytest.mark.slow  # a relay process over DDS
def test_down_and_loss_set_at_runtime(processes, ros_node):
    relay = start_relay(processes, HEADER_ROUTE, seed=7)
    ends = LinkEnds(ros_node, HEADER_ROUTE)
    assert ends.prime(), processes.log(relay)

    # Down drops what is on its way and what comes while it is down.
    in_flight_s = 3.0
    assert set_parameter(ros_node, "latency_s", in_flight_s).successful
    on_their_way = ["a0", "a1", "a2"]
    for label in on_their_way:
        ends.send(label)
    assert set_parameter(ros_node, "down", True).successful
    assert time.monotonic() - ends.sent["a0"] < in_flight_s, "down set too late to catch the messages on their way"
    for label in ("b0", "b1", "b2"):
        ends.send(label)
    wait_for(lambda: False, in_flight_s + 1.0, spin=ends.spin)
    assert ends.arrivals == []

    # Up again: they flow.
    assert set_parameter(ros_node, "latency_s", 0.0).successful
    assert set_parameter(ros_node, "down", False).successful
    after_outage = ["c0", "c1", "c2"]
    for label in after_outage:
        ends.send(label)
    assert wait_for(lambda: len(ends.arrivals) == 3, ARRIVAL_S, spin=ends.spin)
    assert ends.labels() == after_outage

    # Every message lost.
    assert set_parameter(ros_node, "drop_probability", 1.0).successful
    for label in ("d0", "d1", "d2", "d3", "d4"):
        ends.send(label)
    wait_for(lambda: False, 1.5, spin=ends.spin)
    assert ends.labels() == after_outage

    # Rejected with a reason; read-only stays read-only.
    rejected = set_parameter(ros_node, "latency_s", -0.1)
    assert not rejected.successful and "latency_s" in rejected.reason
    rejected = set_parameter(ros_node, "drop_probability", 1.5)
    assert not rejected.successful and "drop_probability" in rejected.reason
    assert not set_parameter(ros_node, "seed", 8).successful

    log = stopped_log(processes, relay)
    assert route_counts(log, HEADER_ROUTE) == (ends.published - 11, 11)


@pytest.mark.slow  # a relay process
def test_bad_route_exits_with_the_reason(processes):
    relay = start_relay(processes, "robot/header>std_msgs/msg/Header")
    assert relay.wait(timeout=STARTUP_S) == 1
    log = processes.log(relay)
    assert "route 'robot/header>std_msgs/msg/Header' is not of the form IN_TOPIC>OUT_TOPIC>pkg/msg/Type" in log
    assert "Traceback" not in log


def test_counts_in_process(ros_node):
    relay = LinkRelay(parameter_overrides=[Parameter("routes", value=[HEADER_ROUTE]),
                                           Parameter("drop_probability", value=1.0),
                                           Parameter("reliability", value="reliable")])
    executor = SingleThreadedExecutor()
    executor.add_node(relay)
    executor.add_node(ros_node)
    ends = LinkEnds(ros_node, HEADER_ROUTE, spin=lambda: executor.spin_once(timeout_sec=0.05))
    name = "robot/header>base/header"
    try:
        assert wait_for(lambda: ends.publisher.get_subscription_count() > 0, ARRIVAL_S, spin=ends.spin)
        for label in ("lost0", "lost1", "lost2"):
            ends.send(label)
        assert wait_for(lambda: relay.counts()[name]["dropped"] == 3, ARRIVAL_S, spin=ends.spin), relay.counts()
        assert relay.set_parameters([Parameter("drop_probability", value=0.0)])[0].successful
        for label in ("kept0", "kept1"):
            ends.send(label)
        assert wait_for(lambda: ends.labels() == ["kept0", "kept1"], ARRIVAL_S, spin=ends.spin), ends.labels()
        assert relay.counts() == {name: {"forwarded": 2, "dropped": 3}}
    finally:
        executor.remove_node(relay)
        relay.destroy_node()


def test_no_routes_is_a_config_error(ros_node):
    with pytest.raises(ConfigError, match="routes is not set"):
        LinkRelay()


@pytest.mark.parametrize("entry, reason", [
    ("a>b", "is not of the form IN_TOPIC>OUT_TOPIC>pkg/msg/Type"),
    ("a>>std_msgs/msg/Header", "is not of the form"),
    ("a>a>std_msgs/msg/Header", "forwards a topic onto itself"),
    ("a>b>std_msgs/Header", "is not of the form pkg/msg/Type"),
    ("a>b>std_msgs/msg/NoSuchMessage", "std_msgs.msg has no message NoSuchMessage"),
    ("a>b>no_such_package/msg/Header", "no Python module no_such_package.msg"),
])
def test_parse_route_says_what_is_wrong(entry, reason):
    with pytest.raises(ConfigError, match=re.escape(reason)):
        parse_route(entry)


def test_parse_route():
    route = parse_route("sentryfuse/offload/request>base/offload/request>sentryfuse/msg/OffloadRequest")
    assert (route.name, route.in_topic, route.out_topic) == (
        "sentryfuse/offload/request>base/offload/request", "sentryfuse/offload/request", "base/offload/request")
    assert route.msg_type.__name__ == "OffloadRequest"
