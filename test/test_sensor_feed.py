"""Polled sensor subscriptions (nodes/sensor_feed.py): nothing is handled until drained, then
everything queued, oldest first, once for every consumer; counters; and the inference node
under it through 6 deactivate/activate cycles."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.experimental.events_executor import EventsExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu

from conftest import wait_for
from sentryfuse.msg import Prediction
from sentryfuse_ros.nodes import encode
from sentryfuse_ros.nodes.inference_node import InferenceNode
from sentryfuse_ros.nodes.lifecycle import autostart
from sentryfuse_ros.nodes.qos import reliable_qos, sensor_qos
from sentryfuse_ros.nodes.sensor_feed import CallbackFeed, FeedPool, SensorFeed


def _imu(node, index: int) -> Imu:
    return encode.imu_to_msg(np.array([index, 0.0, 9.8, 0.0, 0.0, 0.0]), node.get_clock().now().to_msg(), "imu")


def _publish(node, topic: str, count: int):
    publisher = node.create_publisher(Imu, topic, sensor_qos("reliable"))
    assert wait_for(lambda: publisher.get_subscription_count() > 0, timeout=10.0)
    for index in range(count):
        publisher.publish(_imu(node, index))
    return publisher


def _drain_until(feed, count_of, count: int, subscriptions=None) -> bool:
    return wait_for(lambda: feed.drain(subscriptions) >= 0 and count_of() >= count, timeout=10.0)


def test_messages_wait_until_drained_then_arrive_in_order_once_per_consumer(ros_node):
    feed = SensorFeed()
    first, second = [], []
    sub_a = feed.subscribe(ros_node, Imu, "/feed/imu", sensor_qos("best_effort", depth=50), first.extend)
    feed.subscribe(ros_node, Imu, "/feed/imu", sensor_qos("best_effort", depth=10), second.extend)
    assert ros_node.count_subscribers("/feed/imu") == 1, "consumers of one topic share one subscription"
    _publish(ros_node, "/feed/imu", 20)
    time.sleep(0.3)  # delivered to the middleware's queue, not to us
    assert first == [] and second == []
    assert _drain_until(feed, lambda: len(first), 20)
    assert [d.msg.linear_acceleration.x for d in first] == list(range(20))
    assert [d.msg.linear_acceleration.x for d in second] == list(range(20))
    counters = feed.topic(sub_a).counters
    assert counters.taken == 20 and counters.published == 20 and counters.lost == 0
    assert all(d.received_ns > 0 for d in first)
    feed.close()


def test_a_queue_shorter_than_the_burst_keeps_the_newest_and_counts_what_it_dropped(ros_node):
    feed = SensorFeed()
    got = []
    subscription = feed.subscribe(ros_node, Imu, "/feed/short", sensor_qos("best_effort", depth=5), got.extend)
    publisher = _publish(ros_node, "/feed/short", 30)
    time.sleep(0.3)
    assert _drain_until(feed, lambda: len(got), 1)
    feed.drain()
    assert [d.msg.linear_acceleration.x for d in got] == list(range(25, 30))
    counters = feed.topic(subscription).counters
    assert counters.taken == 5 and counters.published == 5, "sequence numbers start at the first message taken"
    for index in range(10):
        publisher.publish(_imu(ros_node, 100 + index))
    time.sleep(0.3)
    feed.drain()
    assert counters.taken == 10 and counters.published == 15, "5 superseded in the queue"
    feed.close()


def test_wait_returns_when_a_message_is_queued_and_unsubscribe_removes_the_subscription(ros_node):
    feed = SensorFeed()
    subscription = feed.subscribe(ros_node, Imu, "/feed/wait", sensor_qos("best_effort", depth=5), lambda d: None)
    assert not feed.wait(0.05)
    _publish(ros_node, "/feed/wait", 1)
    assert feed.wait(10.0)
    feed.unsubscribe(subscription)
    assert wait_for(lambda: ros_node.count_subscribers("/feed/wait") == 0, timeout=10.0)
    assert not feed.wait(0.01), "no topics: nothing to wait for"


def test_callback_feed_delivers_through_the_executor(ros_node):
    feed = CallbackFeed()
    got = []
    subscription = feed.subscribe(ros_node, Imu, "/feed/cb", sensor_qos("best_effort", depth=50), got.extend)
    _publish(ros_node, "/feed/cb", 10)
    executor = SingleThreadedExecutor()
    executor.add_node(ros_node)
    assert wait_for(lambda: len(got) == 10, timeout=10.0, spin=lambda: executor.spin_once(timeout_sec=0.05))
    assert feed.drain() == 0 and feed.topic(subscription).counters.taken == 10
    executor.remove_node(ros_node)
    feed.close()


def test_feed_pool_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="ingestion must be one of"):
        FeedPool().get("telepathy")


@pytest.mark.slow  # about 10 s per executor on 2 cores
@pytest.mark.parametrize("executor_type", [SingleThreadedExecutor, EventsExecutor], ids=["single_threaded", "events"])
def test_inference_node_survives_6_deactivate_activate_cycles_and_keeps_predicting(ros_node, tiny_weights, executor_type):
    weights, gate = tiny_weights
    node = InferenceNode(parameter_overrides=[
        Parameter("weights_path", value=str(weights)), Parameter("gate_path", value=str(gate)),
        Parameter("camera.topic", value="/cycles/camera"), Parameter("imu.topic", value="/cycles/imu"),
        Parameter("audio.topic", value="/cycles/audio"), Parameter("prediction_topic", value="/cycles/prediction"),
        Parameter("state_topic", value="/cycles/state"), Parameter("policy.normal.rate_hz", value=20.0),
        Parameter("runtime", value="eager"),  # each activation rebuilds the plans: keep that cheap
    ])
    predictions = []
    ros_node.create_subscription(Prediction, "/cycles/prediction", predictions.append, reliable_qos(10))
    imu = ros_node.create_publisher(Imu, "/cycles/imu", sensor_qos("reliable"))
    executor = executor_type()
    executor.add_node(node)
    executor.add_node(ros_node)

    def stream(seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            imu.publish(_imu(ros_node, 0))
            executor.spin_once(timeout_sec=0.01)
        return bool(until and until())

    try:
        assert autostart(node)
        for cycle in range(6):  # each cycle destroys and re-creates every subscription (rclpy issue 1644)
            count = len(predictions)
            assert stream(30.0, until=lambda: len(predictions) > count), f"no prediction after activation {cycle}"
            assert node.trigger_deactivate() is not None
            assert wait_for(lambda: ros_node.count_subscribers("/cycles/imu") == 0, timeout=10.0,
                            spin=lambda: executor.spin_once(timeout_sec=0.01))
            stream(0.2)
            assert node.trigger_activate() is not None
            assert wait_for(lambda: ros_node.count_subscribers("/cycles/imu") == 1, timeout=10.0,
                            spin=lambda: executor.spin_once(timeout_sec=0.01))
        assert predictions[-1].used_modalities == ["imu"]
    finally:
        executor.shutdown()
        node.destroy_node()
