"""Calling a node's services from another node, every call bounded: the one client the benches,
the tests and `sentryfuse` tools use to ask a lifecycle node's state, make it transition, or call
any other service (e.g. set_parameters) with a timeout.

Each call spins the calling `node` until the answer comes or the time is up, so it must not be
called from inside that node's own executor callbacks.
"""

from __future__ import annotations

import time

import rclpy
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState


def call_service(node, service_type, service: str, request, timeout_s: float):
    """The response of `service`, or None if it is not there or does not answer within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    client = node.create_client(service_type, service)
    try:
        if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
            return None
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=max(0.0, deadline - time.monotonic()))
        return future.result() if future.done() else None
    finally:
        node.destroy_client(client)


def _service(name: str, service: str) -> str:
    """`name`'s service: `name` is a node name, fully qualified ("/ns/node") or not ("node")."""
    return f"{name if name.startswith('/') else '/' + name}/{service}"


def change_state(node, name: str, transition: int, timeout_s: float) -> bool:
    """Ask lifecycle node `name` to make `transition` (a Transition.TRANSITION_* id); True if it did."""
    request = ChangeState.Request(transition=Transition(id=transition))
    response = call_service(node, ChangeState, _service(name, "change_state"), request, timeout_s)
    return response is not None and response.success


def is_active(node, name: str, timeout_s: float) -> bool:
    response = call_service(node, GetState, _service(name, "get_state"), GetState.Request(), timeout_s)
    return response is not None and response.current_state.id == State.PRIMARY_STATE_ACTIVE


def activate_remote(node, name: str, timeout_s: float) -> float | None:
    """Configure and activate lifecycle node `name` within `timeout_s` in all; the activation time
    on time.monotonic() (the middle of the activate call, where the transition ran), or None if
    either transition failed or did not answer in time."""
    deadline = time.monotonic() + timeout_s
    activated = None
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        sent = time.monotonic()
        if not change_state(node, name, transition, max(0.0, deadline - sent)):
            return None
        activated = (sent + time.monotonic()) / 2
    return activated


def configure_and_activate(node, name: str, timeout_s: float) -> bool:
    return activate_remote(node, name, timeout_s) is not None
