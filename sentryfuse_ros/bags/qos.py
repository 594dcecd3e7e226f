"""QoS between rclpy and rosbag2 metadata (`offered_qos_profiles`), and the profiles the recorder
subscribes and the player publishes with."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sentryfuse_ros.bags.types import LATCHED, OUTPUT, SENSOR
from sentryfuse_ros.nodes.qos import latched_state_qos, reliable_qos, sensor_qos

# A recorder's queue between two drains (100 ms): 10 s of a 100 Hz IMU, so nothing is dropped
# even when the recorder is held up for seconds.
RECORD_DEPTH = 1000
PLAY_DEPTH = 10


def record_qos(kind: str, depth: int = RECORD_DEPTH) -> QoSProfile:
    """What the recorder subscribes with: best effort for sensor streams (matches best-effort and
    reliable publishers), reliable + transient local for the latched state topics (the latest
    state reaches the recorder when it starts), reliable for outputs; each with a deep queue."""
    if kind == SENSOR:
        return sensor_qos("best_effort", depth=depth)
    if kind == LATCHED:
        profile = latched_state_qos()
        profile.depth = depth
        return profile
    return reliable_qos(depth)


def adapted_record_qos(offered: list[QoSProfile], depth: int = RECORD_DEPTH) -> QoSProfile:
    """For a topic of no known kind: reliable only if every publisher is, transient local only if
    every publisher is (as `ros2 bag record` adapts), so every publisher is matched."""
    reliable = bool(offered) and all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _time(duration):
    from rosbags.interfaces import QosTime

    sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
    return QosTime(sec, nsec)


def to_bag_qos(profile: QoSProfile):
    """rclpy QoSProfile (a publisher's offered QoS) -> rosbags Qos for the bag's metadata."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability

    return Qos(
        history=QosHistory[profile.history.name],
        depth=int(profile.depth),
        reliability=QosReliability[profile.reliability.name],
        durability=QosDurability[profile.durability.name],
        deadline=_time(profile.deadline),
        lifespan=_time(profile.lifespan),
        liveliness=QosLiveliness[profile.liveliness.name],
        liveliness_lease_duration=_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def play_qos(offered: list, kind: str | None) -> QoSProfile:
    """What the player publishes a topic with: the recorded publishers' reliability and
    durability (rosbags Qos from the bag's metadata), else the topic's kind, else reliable
    (which every subscriber matches). Deadline, lifespan and liveliness are not replayed."""
    if not offered:
        if kind == SENSOR:
            return sensor_qos("best_effort", depth=PLAY_DEPTH)
        if kind == LATCHED:
            return latched_state_qos()
        return reliable_qos(PLAY_DEPTH)
    reliabilities = {q.reliability.name for q in offered}
    durabilities = {q.durability.name for q in offered}
    reliable = reliabilities != {"BEST_EFFORT"}
    latched = durabilities == {"TRANSIENT_LOCAL"}
    depths = [q.depth for q in offered if q.history.name == "KEEP_LAST" and q.depth > 0]
    depth = max(depths) if depths else (1 if latched else PLAY_DEPTH)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth if latched else max(depth, PLAY_DEPTH),
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


__all__ = ["RECORD_DEPTH", "SENSOR", "LATCHED", "OUTPUT", "record_qos", "adapted_record_qos", "to_bag_qos", "play_qos"]
