"""The evaluation grid end to end on a tiny model and synthetic splits, its resumption and its headline."""

import csv
from dataclasses import replace

import pytest
import torch

from sentryfuse_ros.cli import main
from sentryfuse_ros.evaluation.cli import evaluate_and_report
from sentryfuse_ros.evaluation.grid import QUICK_GRID, UNPRUNED, Row, RowKey
from sentryfuse_ros.evaluation.report import ACCURACY_PLOT, GAIN_PLOT, REPORT
from sentryfuse_ros.evaluation.run import GridData
from sentryfuse_ros.evaluation.summary import FULL_SET, Table, headline
from conftest import NARROW
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.pruning.baselines.taylor import SubsetTaylorOracle
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.registry import build_method

SUBSETS = (("camera",), ("audio",), ("camera", "imu", "audio"))
SPEC = replace(
    QUICK_GRID,
    methods=("random", "magnitude", "taylor", "kwon", "flap", "oracle", "sentrygate"),
    subsets=SUBSETS,
    ratios=(0.25, 0.5),
    test_examples=24,
    calibration_examples=8,
)


def _split(n, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs = {
        "camera": torch.randn(n, 1, 28, 28, generator=generator),
        "imu": torch.randn(n, 6, 200, generator=generator),
        "audio": torch.randn(n, 40, 101, generator=generator),
    }
    return inputs, torch.randint(0, 10, (n,), generator=generator)


class CountingMethod:
    """Wraps a method, counting plan() calls, to see what a resumed run recomputes."""

    def __init__(self, method):
        self.inner, self.calls = method, 0
        self.subset_aware = getattr(method, "subset_aware", True)

    def plan(self, *args):
        self.calls += 1
        return self.inner.plan(*args)


def _methods():
    # A stand-in for SentryGate (whose gate belongs to the shipped backbone): a subset-aware method.
    methods = {name: build_method(name) for name in SPEC.methods if name != "sentrygate"}
    methods["sentrygate"] = SubsetTaylorOracle()
    return {name: CountingMethod(method) for name, method in methods.items()}


def _run(tmp_path, methods):
    torch.manual_seed(0)
    model = SentryAttend(NARROW).eval()
    test_inputs, test_labels = _split(40, seed=1)
    calibration_inputs, calibration_labels = _split(16, seed=2)
    pool = Calibration(calibration_inputs, calibration_labels, batch_size=8)
    return evaluate_and_report(GridData(model, test_inputs, test_labels, pool), SPEC, methods, tmp_path, progress=False)


def _csv_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_quick_eval_writes_results_report_and_plots_then_resumes(tmp_path):
    methods = _methods()
    summary = _run(tmp_path, methods)
    n_cells = len(SPEC.methods) * len(SUBSETS) * len(SPEC.ratios) * len(SPEC.seeds)
    rows = _csv_rows(tmp_path / "results.csv")
    assert len(rows) == n_cells + len(SUBSETS)
    assert {row["n_test"] for row in rows} == {"24"}
    assert sum(row["method"] == UNPRUNED for row in rows) == len(SUBSETS)
    for name in (REPORT, ACCURACY_PLOT, GAIN_PLOT):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / ACCURACY_PLOT).read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / REPORT).read_text()
    assert "| kwon |" in report and "strongest baseline" in report
    assert any(line.startswith("SentryGate - ") for line in summary.lines)
    # Static methods plan once per (ratio, seed); subset-aware ones once per subset too.
    assert methods["kwon"].calls == len(SPEC.ratios)
    assert methods["oracle"].calls == len(SPEC.ratios) * len(SUBSETS)

    # Everything is in the CSV: a second run plans nothing and reports the same.
    again = _methods()
    assert str(_run(tmp_path, again)) == str(summary)
    assert sum(method.calls for method in again.values()) == 0
    assert len(_csv_rows(tmp_path / "results.csv")) == len(rows)

    # Lose the last row (an interrupted run): only that cell is recomputed.
    with open(tmp_path / "results.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:-1])
    third = _methods()
    _run(tmp_path, third)
    assert sum(method.calls for method in third.values()) == 1
    assert third[rows[-1]["method"]].calls == 1
    assert len(_csv_rows(tmp_path / "results.csv")) == len(rows)


def _row(method, subset, ratio, seed, accuracy):
    return Row(RowKey("m", "s", method, "f", subset, ratio, seed), accuracy, 100, 1000)


def test_headline_compares_sentrygate_with_the_strongest_non_oracle_baseline():
    rows = [_row(UNPRUNED, subset, 0.0, 0, 0.9) for subset in ("camera", FULL_SET)]
    for seed in (0, 1):
        for ratio in (0.2, 0.6):
            rows += [
                _row("random", "camera", ratio, seed, 0.10),
                _row("random", FULL_SET, ratio, seed, 0.20),
                _row("kwon", "camera", ratio, seed, 0.30),
                _row("kwon", FULL_SET, ratio, seed, 0.70),
                _row("oracle", "camera", ratio, seed, 0.95),
                _row("oracle", FULL_SET, ratio, seed, 0.95),
                _row("sentrygate", "camera", ratio, seed, 0.60),
                _row("sentrygate", FULL_SET, ratio, seed, 0.75),
            ]
    table = Table(rows)
    assert table.strongest_baseline() == "kwon"  # the oracle scores higher but is no baseline
    assert table.gain("sentrygate", "kwon") == pytest.approx(0.175)
    assert table.gain("sentrygate", "kwon", ["camera"]) == pytest.approx(0.30)
    lines = headline(table).lines
    assert lines[0] == "strongest baseline: kwon (grid mean 50.0%)"
    assert lines[1] == (
        "SentryGate - kwon: +17.5 points on the whole grid, +30.0 points on subsets with a dropped modality, "
        "+5.0 points with all modalities"
    )
    # Relative: 0.675 / 0.5 on the grid, 0.6 / 0.3 on camera alone.
    assert lines[2] == (
        "relative: +35.0% on the grid (target >= +15% (reached)), +100.0% with a dropped modality "
        "(target >= +20% (reached))"
    )
    assert table.relative_gain("sentrygate", "kwon") == pytest.approx(0.35)
    # Retained at 0.6: mean(0.60, 0.75) / unpruned 0.9; no row at 0.8, so no figure for it.
    assert lines[3] == "SentryGate keeps of the unpruned accuracy: 75.0% at 0.6 (target >= 98% (not reached))"
    assert table.retained("sentrygate", 0.8) is None
    assert "SentryGate - oracle -27.5 points" in lines[4]
    assert table.best_baseline_gain("sentrygate", "camera", 0.2) == pytest.approx(0.30)


def test_eval_command_is_registered():
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
