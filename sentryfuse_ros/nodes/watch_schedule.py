"""When heartbeat_monitor next looks at its sensor queues: the rule, without rclpy.

The monitor takes sensor messages only when it looks (nodes/sensor_feed.py, polled ingestion);
each look drains every queue, judges every message at its arrival time, then declares dead
each live sensor silent for its timeout (liveness.SensorLiveness.update). So *when* it looks
decides only how soon a dropout is seen and how often the process wakes, never what is
counted: recovery, rates and invalid messages stay exact.

Times are seconds on time.monotonic(); tests drive the rule with a simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

# A dead (or never heard) sensor's queue is looked at this often: recovery takes about a second
# of messages anyway.
RECOVERY_POLL_S = 0.25


@dataclass(frozen=True)
class Watch:
    """What the schedule needs of one sensor (from its SensorLiveness)."""

    alive: bool
    last_valid: float | None  # arrival of its newest valid message; None before the first
    timeout_s: float


def sensor_due(watch: Watch, last_look: float) -> float:
    """When this sensor wants the next look (period 0): a live sensor when its newest valid
    message is timeout_s old, a dead one max(timeout_s, RECOVERY_POLL_S) after the last look."""
    if watch.alive and watch.last_valid is not None:
        return watch.last_valid + watch.timeout_s
    return last_look + max(watch.timeout_s, RECOVERY_POLL_S)


def next_look(last_look: float, watches: Iterable[Watch], period_s: float) -> float:
    """When the monitor looks next, having last looked at `last_look`, with check period
    `period_s` (power.check_periods_s at the current power level):

        next = max(min over sensors of sensor_due, last_look + period_s)

    One due time for all sensors. Period 0 is the per-sensor rule: the earliest sensor's due
    time, so a sensor is declared dead exactly timeout_s after its last valid message. With
    P > 0 the looks are at least P apart (about 1/P wake-ups a second while the sensors stream)
    and never earlier than period 0 would look; since every look is at most max(due, previous
    look + P), the first look at or after a sensor's due time comes less than P after it, so
    a dropout is detected within timeout_s + P (plus wake-up latency), never before timeout_s.

    A due time already past (after a level change, say to full) gives a look at once; the
    caller keeps a minimum timer period so that "at once" does not spin.
    """
    earliest = min((sensor_due(watch, last_look) for watch in watches), default=last_look + RECOVERY_POLL_S)
    return max(earliest, last_look + period_s)


def longest_wait_s(timeout_s: float, longest_period_s: float) -> float:
    """The longest a sensor's queue waits between two looks under `next_look`, over every level
    whose check period is at most `longest_period_s`: its timeout while alive, RECOVERY_POLL_S
    while dead, the check period at a level with one (wake-up latency comes on top)."""
    return max(timeout_s, RECOVERY_POLL_S, longest_period_s)
