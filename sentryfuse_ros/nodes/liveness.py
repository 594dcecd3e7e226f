"""Alive/dead state of one sensor stream, with recovery hysteresis and rate/age estimates.

No rclpy here: every method takes `now` (seconds on one monotonic clock), so tests drive it
with a fake clock and the node with its steady clock.

Rules
- Dead once no *valid* message arrived for `timeout_s` (an invalid message never refreshes).
  Only `update()` declares a death: the node calls it after handling the messages already
  waiting, so a monitor that was itself descheduled for longer than a timeout does not kill a
  sensor whose messages kept arriving meanwhile.
- Alive again only after `recover_messages` consecutive valid messages, none of them more than
  `timeout_s` apart and no invalid message among them. With recover_messages worth about one
  second of messages, a sensor flapping at 1 Hz can never recover, so the live set stays put.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LivenessConfig:
    timeout_s: float
    recover_messages: int
    rate_window_s: float = 1.0

    def __post_init__(self):
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.recover_messages < 1:
            raise ValueError(f"recover_messages must be >= 1, got {self.recover_messages}")
        if not self.rate_window_s > 0:
            raise ValueError(f"rate_window_s must be > 0, got {self.rate_window_s}")


class SensorLiveness:
    def __init__(self, config: LivenessConfig):
        self.config = config
        self.alive = False
        self.last_valid: float | None = None
        self.last_invalid: float | None = None
        self.last_invalid_reason = ""
        self.valid_count = 0
        self.invalid_count = 0
        self.dropouts = 0
        self.streak = 0
        self._arrivals: deque[float] = deque()

    def reconfigure(self, config: LivenessConfig) -> None:
        self.config = config

    @property
    def ever_received(self) -> bool:
        return self.valid_count + self.invalid_count > 0

    def on_valid(self, now: float) -> bool:
        """Record a valid message; True if it brought the sensor back to life."""
        if self._silent_for_timeout(now):
            self.streak = 0  # recovery needs an unbroken run
        self.valid_count += 1
        self.last_valid = now
        self.streak += 1
        self._arrivals.append(now)
        self._trim(now)
        if not self.alive and self.streak >= self.config.recover_messages:
            self.alive = True
            return True
        return False

    def on_invalid(self, now: float, reason: str) -> None:
        """Record an invalid message: counted, never refreshes, restarts recovery."""
        self.invalid_count += 1
        self.last_invalid = now
        self.last_invalid_reason = reason
        self.streak = 0

    def update(self, now: float) -> bool:
        """Apply the timeout; True if the sensor just died."""
        if not self._silent_for_timeout(now):
            return False
        self.streak = 0
        if not self.alive:
            return False
        self.alive = False
        self.dropouts += 1
        return True

    def age(self, now: float) -> float:
        return math.inf if self.last_valid is None else max(0.0, now - self.last_valid)

    def rate_hz(self, now: float) -> float:
        """Valid messages per second over the last rate_window_s (0 with fewer than two)."""
        self._trim(now)
        if len(self._arrivals) < 2:
            return 0.0
        span = self._arrivals[-1] - self._arrivals[0]
        return (len(self._arrivals) - 1) / span if span > 0 else 0.0

    def _silent_for_timeout(self, now: float) -> bool:
        return self.last_valid is not None and now - self.last_valid >= self.config.timeout_s

    def _trim(self, now: float) -> None:
        horizon = now - self.config.rate_window_s
        while self._arrivals and self._arrivals[0] < horizon:
            self._arrivals.popleft()
