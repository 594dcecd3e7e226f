"""The evaluation report: CSV rows -> markdown tables and PNG plots in the results folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402

from sentryfuse_ros.evaluation.grid import GridSpec  # noqa: E402
from sentryfuse_ros.evaluation.summary import (  # noqa: E402
    FULL_SET,
    Headline,
    Table,
    dropped_modality_subsets,
    headline,
)
from sentryfuse_ros.pruning.registry import SENTRYGATE  # noqa: E402

ACCURACY_PLOT = "accuracy_vs_ratio.png"
GAIN_PLOT = "sentrygate_gain.png"
REPORT = "report.md"

SEED_NOTE = (
    "A seed picks which calibration examples are drawn from the calibration split and the random "
    "baseline's scores; the test examples, the backbone and every other setting stay fixed. Data-free, "
    "deterministic methods (magnitude, and SentryGate) give the same plan for every seed."
)


def write_report(table: Table, spec: GridSpec, model_id: str, n_test: int, out_dir: Path) -> Headline:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = headline(table)
    plot_accuracy(table, out_dir / ACCURACY_PLOT)
    has_gain = SENTRYGATE in table.accuracy and table.baselines()
    if has_gain:
        plot_gain(table, out_dir / GAIN_PLOT)
    (out_dir / REPORT).write_text(markdown(table, spec, model_id, n_test, summary, has_gain))
    return summary


def markdown(table: Table, spec: GridSpec, model_id: str, n_test: int, summary: Headline, has_gain: bool) -> str:
    subsets, ratios = table.subsets(), table.ratios()
    dropped = dropped_modality_subsets(subsets)
    lines = [
        "# Zero-shot pruning: accuracy over modality subsets, ratios and seeds",
        "",
        f"Backbone `{model_id}`; {n_test} examples of the `{spec.test_split}` split; "
        f"{spec.calibration_examples} calibration examples from `{spec.calibration_split}`; "
        f"seeds {', '.join(map(str, spec.seeds))}; ratios {', '.join(f'{r:g}' for r in ratios)}.",
        "",
        SEED_NOTE,
        "",
        "## Headline",
        "",
        *[f"- {line}" for line in summary.lines],
        "",
        *_table_head("Accuracy (%) per modality subset, mean over ratios and seeds",
                     ["method", *subsets, "grid mean", "dropped-modality mean"]),
        _row(["unpruned", *[_percent(table.unpruned.get(s)) for s in subsets], "", ""]),
    ]
    for method in table.methods:
        cells = [_percent(table.mean(method, [s])) for s in subsets]
        lines.append(_row([method, *cells, _percent(table.mean(method)), _percent(table.mean(method, dropped))]))
    lines += ["", *_table_head("Accuracy (%) per prune ratio, mean over subsets and seeds",
                               ["method", *[f"{r:g}" for r in ratios]])]
    for method in table.methods:
        lines.append(_row([method, *[_percent(table.mean(method, ratio=r)) for r in ratios]]))
    if has_gain:
        lines += ["", *_table_head("SentryGate minus the best baseline of each cell (accuracy points, mean over seeds)",
                                   ["subset", *[f"{r:g}" for r in ratios]])]
        for subset in subsets:
            gains = [table.best_baseline_gain(SENTRYGATE, subset, r) for r in ratios]
            lines.append(_row([subset, *[_signed(g) for g in gains]]))
    lines += ["", f"![accuracy vs ratio]({ACCURACY_PLOT})"]
    if has_gain:
        lines.append(f"![SentryGate gain]({GAIN_PLOT})")
    return "\n".join(lines) + "\n"


def _table_head(title: str, columns: list[str]) -> list[str]:
    """A markdown section title and the header rows of its table."""
    return [f"## {title}", "", _row(columns), _row(["---"] * len(columns))]


def plot_accuracy(table: Table, path: Path) -> None:
    subsets, ratios = table.subsets(), table.ratios()
    columns = 4
    rows = -(-len(subsets) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for axis, subset in zip(axes.flat, subsets):
        for method in table.methods:
            values = [table.mean(method, [subset], r) for r in ratios]
            style = {"linewidth": 2.5} if method == SENTRYGATE else {"linewidth": 1.2}
            axis.plot(
                ratios, [100 * v if v is not None else float("nan") for v in values], marker="o", label=method, **style
            )
        if subset in table.unpruned:
            axis.axhline(100 * table.unpruned[subset], color="black", linestyle="--", linewidth=1, label="unpruned")
        axis.set_title(subset + (" (all)" if subset == FULL_SET else ""))
        axis.set_xlabel("prune ratio")
        axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel("test accuracy (%)")
    for axis in list(axes.flat)[len(subsets) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower right", ncol=2, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_gain(table: Table, path: Path) -> None:
    subsets, ratios = table.subsets(), table.ratios()
    gains = [[table.best_baseline_gain(SENTRYGATE, s, r) for r in ratios] for s in subsets]
    points = [[100 * g if g is not None else float("nan") for g in row] for row in gains]
    limit = max([abs(v) for row in points for v in row if v == v] + [1.0])
    figure, axis = plt.subplots(figsize=(1.1 * len(ratios) + 3, 0.55 * len(subsets) + 1.8))
    image = axis.imshow(points, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
    axis.set_yticks(range(len(subsets)), subsets)
    axis.set_xlabel("prune ratio")
    for i, row in enumerate(points):
        for j, value in enumerate(row):
            if value == value:
                ink = "white" if abs(value) > 0.6 * limit else "black"  # readable on saturated cells
                axis.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=8, color=ink)
    figure.colorbar(image, label="accuracy points")
    axis.set_title("SentryGate minus best baseline per cell")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}"
