"""Plan switch time, measured two ways.

In process: what the inference node does when the situation changes, `PlanCache.get` of a
cached plan, timed over many switches between different situations (the target's "switch").
Over ROS: from a ModalityState that changes the situation to the first Prediction from the
plan for it, both received by the bench; this adds the wait for the node's next tick, the
forward pass and DDS, so it shows what a robot sees rather than the switch itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sentryfuse_ros.modalities import MODALITY_SUBSETS
from sentryfuse_ros.pruning.plan_cache import PlanCache, plan_id


def time_cached_switches(cache: PlanCache, ratios, switches: int, seed: int = 0) -> list[float]:
    """Seconds per `cache.get` when each call asks for a different situation than the last one.
    Every (subset, ratio) plan is built first, as the node does at configure."""
    situations = [(subset, ratio) for subset in MODALITY_SUBSETS for ratio in ratios]
    cache.prebuild(MODALITY_SUBSETS, ratios)
    rng = random.Random(seed)
    sequence, previous = [], None
    while len(sequence) < switches:
        situation = rng.choice(situations)
        if situation != previous:
            sequence.append(situation)
            previous = situation
    seconds = []
    for subset, ratio in sequence:
        started = time.perf_counter()
        cache.get(subset, ratio)
        seconds.append(time.perf_counter() - started)
    return seconds


@dataclass
class SwitchTracker:
    """Pairs each situation change announced by ModalityState with the first Prediction made
    by the plan for the new situation. Times are any one monotonic clock, in seconds."""

    ratio_for: Callable[[int], float]  # power level -> prune ratio, as the node maps it
    latencies_s: list[float] = field(default_factory=list)
    superseded: int = 0  # changed again before the expected plan showed up
    _situation: tuple | None = None
    _current_plan: str | None = None
    _pending: tuple[float, str] | None = None  # (change time, expected plan id)

    def on_state(self, t: float, live: tuple[str, ...], power_level: int) -> None:
        situation = (live, power_level)
        if situation == self._situation:
            return
        self._situation = situation
        if self._pending is not None:
            self.superseded += 1
        expected = plan_id(live, self.ratio_for(power_level)) if live else None
        # Start-up (no prediction yet) is window filling, not a switch; and a change that keeps
        # the plan (e.g. two power levels with one ratio) needs no switch.
        if self._current_plan is None or expected is None or expected == self._current_plan:
            self._pending = None
        else:
            self._pending = (t, expected)

    def on_prediction(self, t: float, plan: str) -> None:
        self._current_plan = plan
        if self._pending is not None and plan == self._pending[1]:
            self.latencies_s.append(t - self._pending[0])
            self._pending = None
