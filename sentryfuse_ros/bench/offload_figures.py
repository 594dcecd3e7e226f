"""`sentryfuse bench offload`'s arithmetic, without ROS: the figures of one run from what the bench
observed (every Prediction's receipt, stamp and origin; CPU marks; the scored samples).

- First prediction per source stamp: the earliest Prediction received for each header stamp
  (local or remote), its end-to-end latency = receipt minus stamp. What a consumer acts on first.
- Gaps: the longest time between consecutive predictions (any origin) inside a stretch, against
  the same figure before the link drop.
- Resume: from the link's return to the first remote prediction received after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentryfuse_ros.bench.timing import percentile


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() of receipt
    latency_ms: float  # receipt minus header stamp (the bench's ROS clock)
    stamp_ns: int
    origin: str  # Prediction.ORIGIN_LOCAL or ORIGIN_REMOTE


def between(received: list[Received], start: float, end: float) -> list[Received]:
    return [r for r in received if start <= r.at < end]


def first_per_stamp_ms(received: list[Received]) -> list[float]:
    """End-to-end latency of the first prediction received for each source stamp."""
    first: dict[int, Received] = {}
    for r in received:
        if r.stamp_ns not in first or r.at < first[r.stamp_ns].at:
            first[r.stamp_ns] = r
    return sorted(r.latency_ms for r in first.values())


def latency_summary(values_ms: list[float]) -> dict:
    if not values_ms:
        return {"p50": None, "p99": None, "count": 0}
    ranked = sorted(values_ms)
    return {"p50": round(percentile(ranked, 0.5), 2), "p99": round(percentile(ranked, 0.99), 2), "count": len(ranked)}


def longest_gap_s(received: list[Received], start: float, end: float) -> float | None:
    """The longest stretch without a prediction in [start, end), its ends included; None if the
    stretch is empty."""
    if end <= start:
        return None
    times = [start, *sorted(r.at for r in between(received, start, end)), end]
    return round(max(b - a for a, b in zip(times, times[1:])), 3)


def resume_s(received: list[Received], link_back_at: float) -> float | None:
    """From the link's return to the first remote prediction after it; None if none came."""
    remote = [r.at for r in received if r.origin == "remote" and r.at >= link_back_at]
    return round(min(remote) - link_back_at, 3) if remote else None


def accuracy_in(scored: dict[int, bool], first_ns: int, last_ns: int) -> dict:
    """Live accuracy of the samples that started within [first_ns, last_ns] (scored: start stamp ->
    correct, scoring.RunningScore)."""
    inside = [correct for start, correct in scored.items() if first_ns <= start <= last_ns]
    return {"accuracy": round(100.0 * sum(inside) / len(inside), 1) if inside else None, "samples": len(inside)}


def cpu_cores(cpu_start_s: float, cpu_end_s: float, seconds: float) -> float:
    return round((cpu_end_s - cpu_start_s) / seconds, 4) if seconds > 0 else 0.0
