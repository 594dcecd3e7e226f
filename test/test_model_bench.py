"""`sentryfuse bench model` helpers: latency percentiles, FLOPs per sample, target checks, table."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import ONE_LAYER
from sentryfuse_ros.bench.flops import flops_per_sample
from sentryfuse_ros.bench.model_bench import MODEL_NAMES, check_targets, render_table
from sentryfuse_ros.bench.timing import measure_latency, percentile, torch_threads
from sentryfuse_ros.modalities import MODALITY_SUBSETS, subset_name
from sentryfuse_ros.model import SentryAttend


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert percentile(values, 1.0) == 20.0
    assert percentile([7.0], 0.95) == 7.0


def test_latency_uses_and_restores_thread_count():
    seen = []
    before = torch.get_num_threads()
    latency = measure_latency(lambda: seen.append(torch.get_num_threads()), threads=1, runs=30, warmup=5)
    assert seen == [1] * 35 and torch.get_num_threads() == before
    assert latency.runs == 30 and 0 <= latency.p50_ms <= latency.p95_ms
    with torch_threads(1):
        assert torch.get_num_threads() == 1


def test_flops_per_sample_counts_the_linear_layers_per_sample():
    linear = torch.nn.Linear(10, 4)

    def model(inputs):
        return linear(inputs["imu"])

    assert flops_per_sample(model, {"imu": torch.randn(8, 10)}) == 2 * 10 * 4


def test_flops_shrink_with_fewer_modalities():
    model = SentryAttend(ONE_LAYER)
    inputs = {"camera": torch.randn(1, 1, 28, 28), "imu": torch.randn(1, 6, 200), "audio": torch.randn(1, 40, 101)}
    assert flops_per_sample(model, {"camera": inputs["camera"]}) < flops_per_sample(model, inputs)


def _model_report(accuracy, gflops, p95=3.0):
    scores = {subset_name(s): accuracy[len(s) - 1] for s in MODALITY_SUBSETS}
    return {
        "attention": "sparse_gqa",
        "params": 1000,
        "weights_bytes": 2**20,
        "gflops": gflops,
        "gflops_by_subset": {subset_name(s): gflops for s in MODALITY_SUBSETS},
        "latency_ms": {"p50": p95 / 2, "p95": p95, "mean": p95 / 2},
        "test_accuracy": scores,
        "test_sklearn_accuracy": scores,
        "held_out_human_voices_audio_accuracy": 0.5,
        "held_out_synthetic_voices_audio_accuracy": 0.6,
        "train_minutes": 12.0,
        "best_epoch": 9,
        "val_score": 0.8,
    }


def _report(sentry, dense, no_dropout):
    models = dict(zip(MODEL_NAMES, (sentry, dense, no_dropout)))
    return {
        "threads": 2,
        "latency_runs": 10,
        "n_test": 100,
        "n_test_sklearn": 100,
        "n_held_out_human_voices": 50,
        "models": models,
        "targets": check_targets(models),
    }


def test_targets_met_when_every_margin_holds():
    report = _report(
        _model_report((0.70, 0.80, 0.90), gflops=0.020),
        _model_report((0.70, 0.80, 0.905), gflops=0.030),
        _model_report((0.30, 0.60, 0.89), gflops=0.020),
    )
    targets = report["targets"]
    assert all(target["met"] for target in targets.values()), targets
    assert targets["fusion_gain_points"]["value"] == pytest.approx(20.0)
    assert targets["sparse_to_dense_gflops"]["value"] == pytest.approx(2 / 3)
    assert targets["min_margin_over_no_dropout_points"]["value"] == pytest.approx(1.0)
    assert json.loads(json.dumps(report)) == report


def test_targets_missed_are_reported_as_missed():
    report = _report(
        _model_report((0.88, 0.90, 0.90), gflops=0.029, p95=12.0),
        _model_report((0.90, 0.92, 0.93), gflops=0.030),
        _model_report((0.30, 0.60, 0.91), gflops=0.029),
    )
    missed = {name for name, target in report["targets"].items() if not target["met"]}
    assert missed == {
        "fusion_gain_points",
        "min_margin_over_no_dropout_points",
        "sparse_to_dense_gflops",
        "sparse_accuracy_loss_points",
        "latency_p95_ms",
    }
    table = render_table(report)
    assert table.count("NOT met") == 5
    assert "camera+imu+audio" in table and "held-out human voices" in table


def test_bench_model_is_registered_and_documents_its_options():
    result = subprocess.run(
        [sys.executable, "-m", "sentryfuse_ros.cli", "bench", "model", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout and "--threads" in result.stdout
