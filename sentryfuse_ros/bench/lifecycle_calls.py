"""Bounded lifecycle service calls from a bench's own node: ask a node's state, make a transition."""

from __future__ import annotations

import time

import rclpy
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState


def _call(node, service_type, service: str, request, deadline: float):
    """The response, or None if the service is not there or does not answer before `deadline`."""
    client = node.create_client(service_type, service)
    try:
        if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
            return None
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=max(0.0, deadline - time.monotonic()))
        return future.result() if future.done() else None
    finally:
        node.destroy_client(client)


def is_active(node, name: str, deadline: float) -> bool:
    response = _call(node, GetState, f"/{name}/get_state", GetState.Request(), deadline)
    return response is not None and response.current_state.id == State.PRIMARY_STATE_ACTIVE


def configure_and_activate(node, name: str, deadline: float) -> bool:
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        request = ChangeState.Request(transition=Transition(id=transition))
        response = _call(node, ChangeState, f"/{name}/change_state", request, deadline)
        if response is None or not response.success:
            return False
    return True
