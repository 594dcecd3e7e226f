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
    node_ms: float  # the Prediction's inference_time_ms: tick start to publish, on the robot


@dataclass
class RunRecord:
    """One run of a scenario, its measuring window only (except where said)."""

    window_s: float
    received: list[Received]
    first: list[Received]  # first prediction per stamp (over the whole run) received in the window
    robot_cpu_core: dict[str, float]  # per robot process
    base_cpu_core: dict[str, float]  # base station and relay
    correct: int
    samples: int
    diagnostics: dict[str, str]  # inference_node's, at the window's end
    drop: dict | None = None  # the drop figures of a drop scenario


def pooled(runs: list[RunRecord], robot_process: str) -> dict:
    """A scenario's figures over its repeats: latencies and samples pooled, CPU averaged."""
    received = [r for run in runs for r in run.received]
    first = [r for run in runs for r in run.first]
    correct, samples = sum(run.correct for run in runs), sum(run.samples for run in runs)
    cpu = [run.robot_cpu_core.get(robot_process, 0.0) for run in runs]
    base = {name: round(sum(run.base_cpu_core[name] for run in runs) / len(runs), 4) for name in runs[0].base_cpu_core}
    figures = {
        "robot_cpu_core": round(sum(cpu) / len(cpu), 4),
        "robot_cpu_core_per_run": cpu,
        "base_side_cpu_core": base,
        "predictions_local": sum(r.origin == "local" for r in received),
        "predictions_remote": sum(r.origin == "remote" for r in received),
        "first_per_stamp_ms": latency_summary([r.latency_ms for r in first]),
        "first_per_stamp_origins": {origin: sum(r.origin == origin for r in first) for origin in ("local", "remote")},
        "first_per_stamp_p99_per_run": [latency_summary([r.latency_ms for r in run.first])["p99"] for run in runs],
        "local_node_ms": latency_summary([r.node_ms for r in received if r.origin == "local"]),
        "remote_ms": latency_summary([r.latency_ms for r in received if r.origin == "remote"]),
        "accuracy": round(100.0 * correct / samples, 1) if samples else None,
        "samples": samples,
        "runs": len(runs),
        "window_s": round(sum(run.window_s for run in runs), 1),
        "inference_diagnostics": runs[-1].diagnostics,
    }
    drops = [run.drop for run in runs if run.drop is not None]
    if drops:
        figures["drop"] = drops
    return figures


def between(received: list[Received], start: float, end: float) -> list[Received]:
    return [r for r in received if start <= r.at < end]


def first_per_stamp(received: list[Received]) -> list[Received]:
    """The first prediction received for each source stamp, in receipt order."""
    first: dict[int, Received] = {}
    for r in received:
        if r.stamp_ns not in first or r.at < first[r.stamp_ns].at:
            first[r.stamp_ns] = r
    return sorted(first.values(), key=lambda r: r.at)


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


def correct_in(scored: dict[int, bool], first_ns: int, last_ns: int) -> tuple[int, int]:
    """(correct, samples) of the samples that started within [first_ns, last_ns] (scored: start
    stamp -> correct, scoring.RunningScore)."""
    inside = [correct for start, correct in scored.items() if first_ns <= start <= last_ns]
    return sum(inside), len(inside)


def cpu_cores(cpu_start_s: float, cpu_end_s: float, seconds: float) -> float:
    return round((cpu_end_s - cpu_start_s) / seconds, 4) if seconds > 0 else 0.0
