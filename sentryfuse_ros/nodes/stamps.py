"""Header stamp arithmetic and the sanity check every incoming sensor stamp goes through.

No rclpy: stamps are anything with `sec` and `nanosec` (builtin_interfaces/Time), times are
integer nanoseconds on the node's ROS clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from builtin_interfaces.msg import Time

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    return stamp.sec * NS_PER_S + stamp.nanosec


def ns_to_stamp(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


@dataclass(frozen=True)
class StampLimits:
    # A stamp more than this far ahead of the receiver's clock is rejected (0 disables).
    future_tolerance_s: float = 0.5
    # A stamp older than this on arrival is rejected (0 disables); catches replayed buffers.
    max_age_s: float = 1.0


class StampCheck:
    """Rejects unset, future, too old and out-of-order stamps of one stream.

    Only accepted stamps advance the ordering reference, so a single bogus future stamp
    cannot make every later (correct) message look out of order.
    """

    def __init__(self, limits: StampLimits):
        self.limits = limits
        self.last_ns: int | None = None

    def problem(self, stamp, now_ns: int) -> str | None:
        """Why `stamp` is unacceptable at `now_ns`, or None if it is fine."""
        stamp_ns = stamp_to_ns(stamp)
        if stamp_ns == 0:
            return "header stamp is unset (0)"
        ahead_s = (stamp_ns - now_ns) / NS_PER_S
        if self.limits.future_tolerance_s > 0 and ahead_s > self.limits.future_tolerance_s:
            return f"header stamp is {ahead_s:.3f} s in the future (tolerance {self.limits.future_tolerance_s} s)"
        if self.limits.max_age_s > 0 and -ahead_s > self.limits.max_age_s:
            return f"header stamp is {-ahead_s:.3f} s old (max {self.limits.max_age_s} s)"
        if self.last_ns is not None and stamp_ns < self.last_ns:
            back_s = (self.last_ns - stamp_ns) / NS_PER_S
            return f"header stamp went back {back_s:.3f} s (out of order)"
        return None

    def accept(self, stamp) -> None:
        self.last_ns = stamp_to_ns(stamp)
