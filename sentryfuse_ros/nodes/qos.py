"""QoS profiles every SentryFuse node uses."""

from __future__ import annotations

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITIES = ("best_effort", "reliable")


def sensor_qos(reliability: str = "best_effort", deadline_s: float = 0.0, depth: int = 1) -> QoSProfile:
    """Sensor-data QoS: keep the newest `depth` messages (a frame stream needs only the newest;
    a sample stream such as IMU or audio a queue that lasts until its consumer drains it), volatile.

    A best-effort subscriber matches both kinds of publisher; a reliable one only reliable
    publishers. A deadline > 0 asks the middleware for deadline-missed events, but a publisher
    offering no deadline (the default) is then incompatible and never matched.
    """
    if reliability not in RELIABILITIES:
        raise ValueError(f"reliability must be one of {RELIABILITIES}, got {reliability!r}")
    profile = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
    if deadline_s > 0:
        profile.deadline = Duration(nanoseconds=int(deadline_s * 1e9))
    return profile


def latched_state_qos() -> QoSProfile:
    """For state topics (ModalityState, ground truth): reliable, and a late subscriber
    still gets the latest message (transient local, depth 1)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def reliable_qos(depth: int) -> QoSProfile:
    """Outputs (Prediction, /diagnostics): reliable and volatile, the newest `depth` kept for a
    slow subscriber."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def offload_qos() -> QoSProfile:
    """Offload requests, answers and heartbeats (robot <-> base station): best effort, the newest
    few kept, volatile. A lost or late message is never worth a retransmission: the local
    prediction already stands, and an answer past its deadline is dropped anyway."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=5,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )
