"""Aggregates of grid rows: means per method, the strongest baseline, SentryGate's gains.

Comparisons between two methods average their differences over the cells (subset, ratio, seed)
both have, so a partially finished grid still compares like with like.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import mean

from sentryfuse_ros.evaluation.grid import UNPRUNED, Row
from sentryfuse_ros.modalities import MODALITIES, subset_name
from sentryfuse_ros.pruning.registry import GATE_METHODS, ORACLE, SENTRYGATE

FULL_SET = subset_name(MODALITIES)
Cell = tuple[str, float, int]  # (subset, ratio, seed)


class Table:
    """accuracy[method][(subset, ratio, seed)] of the pruned rows, and the unpruned reference per subset."""

    def __init__(self, rows: Iterable[Row]):
        self.accuracy: dict[str, dict[Cell, float]] = defaultdict(dict)
        self.unpruned: dict[str, float] = {}
        for row in rows:
            if row.key.method == UNPRUNED:
                self.unpruned[row.key.subset] = row.accuracy
            else:
                self.accuracy[row.key.method][(row.key.subset, row.key.ratio, row.key.seed)] = row.accuracy

    @property
    def methods(self) -> list[str]:
        return list(self.accuracy)

    def baselines(self) -> list[str]:
        """Every zero-shot competitor evaluated: all methods but SentryGate (and its ablations) and the oracle."""
        return [m for m in self.methods if m not in (*GATE_METHODS, ORACLE)]

    def subsets(self) -> list[str]:
        return sorted({cell[0] for cells in self.accuracy.values() for cell in cells}, key=_subset_order)

    def ratios(self) -> list[float]:
        return sorted({cell[1] for cells in self.accuracy.values() for cell in cells})

    def mean(self, method: str, subsets: Iterable[str] | None = None, ratio: float | None = None) -> float | None:
        values = [
            value
            for (subset, cell_ratio, _), value in self.accuracy[method].items()
            if (subsets is None or subset in subsets) and (ratio is None or cell_ratio == ratio)
        ]
        return mean(values) if values else None

    def gain(self, method: str, reference: str, subsets: Iterable[str] | None = None, ratio: float | None = None):
        """Mean of method - reference over the cells both have (None if they share none)."""
        subsets = None if subsets is None else set(subsets)
        common = [
            cell
            for cell in self.accuracy[method]
            if cell in self.accuracy[reference]
            and (subsets is None or cell[0] in subsets)
            and (ratio is None or cell[1] == ratio)
        ]
        if not common:
            return None
        return mean(self.accuracy[method][cell] - self.accuracy[reference][cell] for cell in common)

    def strongest_baseline(self) -> str | None:
        scored = [(self.mean(name), name) for name in self.baselines()]
        return max(scored)[1] if scored else None

    def best_baseline_gain(self, method: str, subset: str, ratio: float) -> float | None:
        """method - the best baseline in this (subset, ratio) cell, each averaged over seeds."""
        own = self.mean(method, [subset], ratio)
        others = [self.mean(name, [subset], ratio) for name in self.baselines()]
        others = [value for value in others if value is not None]
        return None if own is None or not others else own - max(others)


def dropped_modality_subsets(subsets: Iterable[str]) -> list[str]:
    return [subset for subset in subsets if subset != FULL_SET]


def _subset_order(name: str) -> tuple[int, list[int]]:
    members = name.split("+")
    return len(members), [MODALITIES.index(m) for m in members]


@dataclass
class Headline:
    lines: list[str]

    def __str__(self) -> str:
        return "\n".join(self.lines)


# The SentryGate issue's accuracy targets (benchmarks, not tests).
TARGET_GRID_GAIN = 15.0
TARGET_DROPPED_GAIN = 20.0


def headline(table: Table) -> Headline:
    strongest = table.strongest_baseline()
    if strongest is None:
        return Headline(["no baseline evaluated"])
    dropped = dropped_modality_subsets(table.subsets())
    lines = [f"strongest baseline: {strongest} (grid mean {100 * table.mean(strongest):.1f}%)"]
    if SENTRYGATE not in table.accuracy:
        lines.append("SentryGate: not evaluated")
    else:
        whole, on_dropped = table.gain(SENTRYGATE, strongest), table.gain(SENTRYGATE, strongest, dropped)
        on_full = table.gain(SENTRYGATE, strongest, [FULL_SET])
        lines.append(
            f"SentryGate - {strongest}: {_points(whole)} on the whole grid, {_points(on_dropped)} on subsets with a "
            f"dropped modality, {_points(on_full)} with all modalities"
        )
        lines.append(
            f"targets: >= +{TARGET_GRID_GAIN:.0f} on the grid {_verdict(whole, TARGET_GRID_GAIN)}, "
            f">= +{TARGET_DROPPED_GAIN:.0f} with a dropped modality {_verdict(on_dropped, TARGET_DROPPED_GAIN)}"
        )
    if ORACLE in table.accuracy:
        line = "oracle (per-subset Taylor, needs data and gradients on the robot): "
        line += f"grid mean {100 * table.mean(ORACLE):.1f}%"
        if SENTRYGATE in table.accuracy:
            line += f", SentryGate - oracle {_points(table.gain(SENTRYGATE, ORACLE))}"
        lines.append(line)
    return Headline(lines)


def _points(difference: float | None) -> str:
    return "n/a" if difference is None else f"{100 * difference:+.1f} points"


def _verdict(difference: float | None, target: float) -> str:
    if difference is None:
        return "(n/a)"
    return "(reached)" if 100 * difference >= target else "(not reached)"
