"""Live vs offline accuracy over the same samples and plans, as a paired comparison.

Both sides score the same samples, so the difference is decided by the discordant samples only
(right live and wrong offline, or the reverse); its standard error is the paired one, much
smaller than either accuracy's own.
"""

from __future__ import annotations

import math

from sentryfuse_ros.bench.sample_ledger import ScoredSample


def compare(samples: list[ScoredSample], offline: list[str], source_labels: list[str]) -> dict:
    """samples[i] predicted `offline[i]` offline; `source_labels[i]` is the label the source holds
    for samples[i].index, which must equal the announced truth if the index mapping is right."""
    if not len(samples) == len(offline) == len(source_labels):
        raise ValueError(f"{len(samples)} samples, {len(offline)} offline predictions, {len(source_labels)} labels")
    n = len(samples)
    live_right = [s.correct for s in samples]
    offline_right = [label == s.truth for s, label in zip(samples, offline)]
    only_live = sum(a and not b for a, b in zip(live_right, offline_right))
    only_offline = sum(b and not a for a, b in zip(live_right, offline_right))
    by_plan: dict[str, dict] = {}
    for sample, a, b in zip(samples, live_right, offline_right):
        entry = by_plan.setdefault(sample.plan.plan_id, {"samples": 0, "live_correct": 0, "offline_correct": 0})
        entry["samples"] += 1
        entry["live_correct"] += a
        entry["offline_correct"] += b
    discordant = only_live + only_offline
    return {
        "samples": n,
        "label_mismatches": sum(s.truth != label for s, label in zip(samples, source_labels)),
        "live_accuracy": _percent(sum(live_right), n),
        "offline_accuracy": _percent(sum(offline_right), n),
        "difference_points": _percent(only_live - only_offline, n),
        "difference_stderr_points": (
            round(100 * math.sqrt(max(0.0, discordant - (only_live - only_offline) ** 2 / n)) / n, 2) if n else None
        ),
        "live_only_correct": only_live,
        "offline_only_correct": only_offline,
        "agreement": _percent(sum(s.predicted == label for s, label in zip(samples, offline)), n),
        "by_plan": dict(sorted(by_plan.items())),
    }


def _percent(count: int, n: int) -> float | None:
    return round(100 * count / n, 2) if n else None
