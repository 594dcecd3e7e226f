"""Lifecycle boilerplate shared by SentryFuse nodes.

`SentryLifecycleNode` declares a node's ParamSpecs, validates every parameter change (rejecting
bad values with a reason) and hands accepted changes to the node; its deactivate, cleanup and
shutdown transitions call the node's `_stop` (undo activate) and `_release` (undo configure).
`run_node` is the body of a node's `main()`: rclpy.init with the command line (so --ros-args
work), autostart, spin, clean exit. Calling another node's services: lifecycle_client.py.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.experimental.events_executor import EventsExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from sentryfuse_ros.nodes.params import ParamSpec, declare_parameters, first_problem
from sentryfuse_ros.nodes.sensor_feed import FeedPool

AUTOSTART = ParamSpec(
    "autostart", True, "Configure and activate at start-up, for use without a lifecycle manager", read_only=True
)
EXECUTORS = ("single_threaded", "events")
EXECUTOR = ParamSpec(
    "executor", "single_threaded", "rclpy executor of this node's process (the first node of a composed process "
    "decides): single_threaded, or rclpy's experimental events executor", choices=EXECUTORS, read_only=True,
)
COMMON_PARAMS = (AUTOSTART, EXECUTOR)  # declared by every SentryFuse node
# The events executor's spin() does not return on SIGINT/SIGTERM (rclpy 9.1.2); spin_once does.
EVENTS_SPIN_S = 0.5


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


class SentryLifecycleNode(LifecycleNode):
    def __init__(self, node_name: str, specs: Iterable[ParamSpec], feeds: FeedPool | None = None, **kwargs):
        """feeds: the sensor feeds of a process whose nodes share subscriptions (nodes/perception.py);
        None: this node's own."""
        super().__init__(node_name, **kwargs)
        self.feeds = feeds or FeedPool()
        self._owns_feeds = feeds is None
        self.param_specs = {spec.name: spec for spec in (*specs, *COMMON_PARAMS)}
        declare_parameters(self, self.param_specs.values())
        self.add_on_set_parameters_callback(self._check_parameter_change)
        self.add_post_set_parameters_callback(self._after_parameter_change)

    def parameter_values(self) -> dict[str, Any]:
        """Current values of this node's ParamSpecs, arrays as tuples."""
        return {name: _plain(self.get_parameter(name).value) for name in self.param_specs}

    def parameters_problem(self, values: dict[str, Any]) -> str | None:
        """Why this complete set of values is unusable (per-parameter limits, then cross_check)."""
        return first_problem(self.param_specs, values) or self.cross_check(values)

    def cross_check(self, values: dict[str, Any]) -> str | None:
        """Override for rules that involve several parameters; return a reason or None."""
        return None

    def on_parameters_changed(self, values: dict[str, Any]) -> None:
        """Override to apply accepted changes while running; `values` are all current values."""

    def checked_parameters(self) -> dict[str, Any] | None:
        """All values if usable, else None after logging why (for on_configure)."""
        values = self.parameter_values()
        problem = self.parameters_problem(values)
        if problem:
            self.get_logger().error(f"invalid parameters: {problem}")
            return None
        return values

    # --- teardown: a node overrides _stop and _release; the transitions call them -----------
    def _stop(self) -> None:
        """Override: undo on_activate (subscriptions, timers). Runs on deactivate and shutdown."""

    def _release(self) -> None:
        """Override: undo on_configure (publishers, loaded state). Runs on cleanup and shutdown,
        so it must do nothing the second time."""

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop()
        return super().on_deactivate(state)  # disables the lifecycle publishers

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop()
        self._release()
        return super().on_shutdown(state)

    def destroy_node(self) -> None:
        self._stop()
        if self._owns_feeds:
            self.feeds.close()
        super().destroy_node()

    def destroy_lifecycle_publishers(self, publishers: Iterable) -> None:
        """Destroy each lifecycle publisher of `publishers` that is not None (for _release)."""
        for publisher in publishers:
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)

    def _check_parameter_change(self, parameters) -> SetParametersResult:
        values = self.parameter_values()
        values.update({p.name: _plain(p.value) for p in parameters if p.name in self.param_specs})
        problem = self.parameters_problem(values)
        return SetParametersResult(successful=problem is None, reason=problem or "")

    def _after_parameter_change(self, parameters) -> None:
        if any(p.name in self.param_specs for p in parameters):
            self.on_parameters_changed(self.parameter_values())


def autostart(node: LifecycleNode) -> bool:
    """Configure then activate, as a lifecycle manager would; False (logged) if either fails."""
    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().error(f"autostart: {transition.__name__} did not succeed")
            return False
    return True


def run_node(make_node: Callable[[], SentryLifecycleNode], args: list[str] | None = None) -> int:
    """Run one node until Ctrl-C / SIGTERM; the exit status for main()."""
    return run_nodes([make_node], args)


def run_nodes(make_nodes: Iterable[Callable[[], SentryLifecycleNode]], args: list[str] | None = None) -> int:
    """Run nodes on one single-threaded executor until Ctrl-C / SIGTERM; the exit status for main().

    Not rclpy's MultiThreadedExecutor: with sensors at their nominal rates its dispatch thread
    spun at 93% of a core (a ready entity whose mutually exclusive group is busy stays ready).
    The sensor subscriptions are polled (nodes/sensor_feed.py), so this executor wakes only for
    timers, services and state topics, a few dozen times a second. `executor: events` runs
    rclpy's experimental EventsExecutor instead (no guard conditions, which it does not support;
    no QoS event callbacks on entities a lifecycle transition destroys, rclpy issue 1644).
    """
    rclpy.init(args=args)
    nodes = []
    try:
        for make_node in make_nodes:
            nodes.append(make_node())
        for node in nodes:
            if node.get_parameter("autostart").value and not autostart(node):
                return 1
        events = nodes[0].get_parameter("executor").value == "events"
        executor = EventsExecutor() if events else SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        if events:
            while rclpy.ok():
                executor.spin_once(timeout_sec=EVENTS_SPIN_S)
        else:
            executor.spin()
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
