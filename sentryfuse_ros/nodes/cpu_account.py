"""Thread CPU time per part of a node's work, for `sentryfuse bench power`'s breakdown.

Parts are timed with the calling thread's CPU clock (CLOCK_THREAD_CPUTIME_ID, under a
microsecond a reading), so time the thread spends blocked or preempted is not counted, and the
process CPU that no part claims (executor, timers, services) is what the bench reports as rest.
"""

from __future__ import annotations

import time
from collections import Counter


class CpuAccount:
    def __init__(self):
        self.ns: Counter[str] = Counter()

    def start(self) -> int:
        return time.thread_time_ns()

    def add(self, part: str, started_ns: int) -> int:
        """Charge the CPU since `started_ns` to `part`; the current reading, to chain parts."""
        now = time.thread_time_ns()
        self.ns[part] += now - started_ns
        return now

    def milliseconds(self) -> dict[str, float]:
        return {part: ns / 1e6 for part, ns in sorted(self.ns.items())}

    def clear(self) -> None:
        self.ns.clear()
