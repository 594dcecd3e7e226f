"""Lifecycle boilerplate shared by SentryFuse nodes.

`SentryLifecycleNode` declares a node's ParamSpecs, validates every parameter change (rejecting
bad values with a reason) and hands accepted changes to the node; `run_node` is the body of a
node's `main()`: rclpy.init with the command line (so --ros-args work), autostart, spin, clean exit.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from sentryfuse_ros.nodes.params import ParamSpec, declare_parameters, first_problem

AUTOSTART = ParamSpec(
    "autostart", True, "Configure and activate at start-up, for use without a lifecycle manager", read_only=True
)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


class SentryLifecycleNode(LifecycleNode):
    def __init__(self, node_name: str, specs: Iterable[ParamSpec], **kwargs):
        super().__init__(node_name, **kwargs)
        self.param_specs = {spec.name: spec for spec in (*specs, AUTOSTART)}
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


def activate_remote(node, name: str, timeout_s: float) -> float | None:
    """Configure and activate the lifecycle node `name` (a fully qualified node name) through its
    services, spinning `node`; the activation time on time.monotonic(), or None if it failed."""
    deadline = time.monotonic() + timeout_s
    client = node.create_client(ChangeState, f"{name}/change_state")
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            return None
        activated = None
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            sent = time.monotonic()
            future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
            rclpy.spin_until_future_complete(node, future, timeout_sec=max(0.0, deadline - time.monotonic()))
            if not future.done() or not future.result().success:
                return None
            activated = (sent + time.monotonic()) / 2  # the transition ran inside the call
        return activated
    finally:
        node.destroy_client(client)


def run_node(make_node: Callable[[], SentryLifecycleNode], args: list[str] | None = None) -> int:
    """Run one node on a single-threaded executor until Ctrl-C / SIGTERM; the exit status for main().

    Not rclpy's MultiThreadedExecutor: with sensors at their nominal rates its dispatch thread
    spun at 93% of a core (a ready entity whose mutually exclusive group is busy stays ready).
    Not rclpy's EventsExecutor: it needs about half the CPU, but with messages arriving it
    ignored SIGTERM and kept spinning at full load (rclpy 9.1.2, seen here), so it never exited.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        if node.get_parameter("autostart").value and not autostart(node):
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
