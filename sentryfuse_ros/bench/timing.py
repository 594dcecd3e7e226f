"""Wall-clock latency percentiles of callables under a fixed torch thread count."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    runs: int
    threads: int


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with `count` intra-op threads, restoring the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (fraction in (0, 1])."""
    # The epsilon keeps e.g. 0.95 * 20 = 19.000000000000004 at rank 19.
    rank = max(1, math.ceil(fraction * len(sorted_values) - 1e-9))
    return sorted_values[rank - 1]


def measure_latency(function: Callable[[], object], threads: int, runs: int = 200, warmup: int = 20) -> Latency:
    """Call `function` `warmup` times untimed, then `runs` times timed, with `threads` torch threads."""
    return measure_latencies({"function": function}, threads, runs, warmup, rounds=1)["function"]


def measure_latencies(
    functions: Mapping[Hashable, Callable[[], object]],
    threads: int,
    runs: int = 200,
    warmup: int = 20,
    rounds: int = 10,
) -> dict[Hashable, Latency]:
    """measure_latency of several functions at once, their timed calls interleaved in `rounds`
    rounds: load from other processes on a shared machine then hits all of them alike, so their
    ratios stay meaningful even when the absolute figures drift."""
    seconds: dict[Hashable, list[float]] = {key: [] for key in functions}
    with torch_threads(threads), torch.inference_mode():
        for function in functions.values():
            for _ in range(warmup):
                function()
        for round_index in range(rounds):
            for key, function in functions.items():
                for _ in range(runs // rounds + (round_index < runs % rounds)):
                    start = time.perf_counter()
                    function()
                    seconds[key].append(time.perf_counter() - start)
    return {key: _summary(sorted(values), threads) for key, values in seconds.items()}


def _summary(seconds: list[float], threads: int) -> Latency:
    return Latency(
        p50_ms=percentile(seconds, 0.50) * 1e3,
        p95_ms=percentile(seconds, 0.95) * 1e3,
        mean_ms=sum(seconds) / len(seconds) * 1e3,
        runs=len(seconds),
        threads=threads,
    )
