"""The robot's side of offload, without ROS: is the base station reachable, what to send, and
which answers still count. inference_node calls it under its lock.

Rules (each stated here once):
- The link is up while base_station heartbeats for the robot's own task (or its answers) arrive
  within `link_timeout_s` of each other (two offload deadlines by default): the link is judged
  lost that long after the last one, and up again at the first heartbeat after it.
- Speculative offload: the local prediction is always published at once. Its inputs are sent
  only when the level allows offload, the link is up and the local confidence is below
  `confidence_threshold` (1 sends every prediction), so the link carries the cases it can change.
- The base station's answer supersedes the local prediction only if it arrives within
  `deadline_s` of the request and before the next local prediction; otherwise it is counted and
  dropped (it would replace a newer answer with an older one). So a lost or slow link never
  leaves a gap: the local answer is there already.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Generic, TypeVar

Local = TypeVar("Local")  # what the node keeps of the local prediction an answer supersedes
Key = tuple[int, str]  # (source stamp in ns, frame_id): what a request and its answer share

LINK_STATES = ("up", "down", "never heard", "another task")


@dataclass(frozen=True)
class OffloadConfig:
    confidence_threshold: float = 0.8
    deadline_s: float = 0.25
    link_timeout_s: float = 0.5
    encoding: str = "float16"

    @classmethod
    def from_values(cls, values) -> "OffloadConfig":
        return cls(values["offload.confidence_threshold"], values["offload.deadline_s"],
                   values["offload.link_timeout_s"], values["offload.encoding"])


@dataclass
class Pending(Generic[Local]):
    sent_at: float
    local: Local


class OffloadLink(Generic[Local]):
    def __init__(self, config: OffloadConfig, task: str):
        self.config = config
        self.task = task  # fingerprint of the robot model's task
        self.counts: Counter[str] = Counter()  # sent, answered, late, expired, unknown answer, ...
        self.round_trips_ms: list[float] = []  # of answers in time, newest last (bounded)
        self._pending: dict[Key, Pending[Local]] = {}
        self._expired: dict[Key, None] = {}  # recently expired keys, oldest first: their answers are late
        self._heard_at: float | None = None
        self._heard_task = ""
        self._was_up = False
        self.transitions: list[tuple[float, str]] = []  # (time, new state) for diagnostics and tests

    # --- the link ------------------------------------------------------------------------------
    def heard(self, now: float, task: str) -> None:
        """A base_station heartbeat arrived."""
        self._heard_at, self._heard_task = now, task
        self.poll(now)

    def state(self, now: float) -> str:
        """One of LINK_STATES."""
        if self._heard_at is None:
            return "never heard"
        if now - self._heard_at > self.config.link_timeout_s:
            return "down"
        return "up" if self._heard_task == self.task else "another task"

    def up(self, now: float) -> bool:
        return self.poll(now) == "up"

    def poll(self, now: float) -> str:
        """The state now, noting a change (and dropping what is in flight when the link is lost)."""
        state = self.state(now)
        if (state == "up") != self._was_up:
            self._was_up = state == "up"
            self.transitions.append((now, state))
            del self.transitions[:-20]
            if not self._was_up:
                self.expire(now, everything=True)  # nothing in flight will be answered in time
        return state

    # --- requests and answers ------------------------------------------------------------------
    def wants(self, now: float, allowed: bool, confidence: float) -> bool:
        """Whether to send this local prediction's inputs (counted by why not)."""
        if not allowed:
            return False
        if confidence >= self.config.confidence_threshold:
            self.counts["confident, kept local"] += 1
            return False
        if not self.up(now):
            self.counts["link not up, kept local"] += 1
            return False
        return True

    def published_local(self, now: float) -> None:
        """A new local prediction was published: no earlier request's answer supersedes it."""
        if self._pending:
            self.counts["newer local prediction"] += len(self._pending)
            self._expired.update(dict.fromkeys(self._pending))
            self._pending.clear()
        self.expire(now)

    def sent(self, now: float, key: Key, local: Local) -> None:
        self._pending[key] = Pending(now, local)
        self.counts["sent"] += 1

    def answered(self, now: float, key: Key) -> Local | None:
        """The local prediction an answer for `key` supersedes, or None: late (past the deadline, or
        after a newer local prediction) or never asked for."""
        if self._heard_task == self.task:
            self._heard_at = max(self._heard_at or now, now)  # an answer is heard from the base station too
        pending = self._pending.pop(key, None)
        if pending is None:
            self.counts["late" if self._expired.pop(key, 0) is None else "answer not awaited"] += 1
            return None
        if now - pending.sent_at > self.config.deadline_s:
            self.counts["late"] += 1
            return None
        self.counts["answered"] += 1
        self.round_trips_ms.append((now - pending.sent_at) * 1e3)
        del self.round_trips_ms[:-200]
        return pending.local

    def expire(self, now: float, everything: bool = False) -> None:
        """Forget requests past their deadline (all of them when the link is lost)."""
        for key in [key for key, pending in self._pending.items()
                    if everything or now - pending.sent_at > self.config.deadline_s]:
            del self._pending[key]
            self.counts["expired"] += 1
            self._expired[key] = None
        for key in list(self._expired)[:-100]:
            del self._expired[key]

    def in_flight(self) -> int:
        return len(self._pending)
