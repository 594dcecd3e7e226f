"""`sentryfuse bench prune` on a tiny checkpoint: it runs, and its --json carries the documented keys."""

import json

import pytest
import torch

from conftest import NARROW
from sentryfuse_ros.bench.prune_bench import format_table
from sentryfuse_ros.cli import main
from sentryfuse_ros.model import SentryAttend, save_checkpoint
from sentryfuse_ros.pruning.runtime import RUNTIMES

ARGS = ["--method", "magnitude", "--ratios", "0.25,0.5", "--runs", "5", "--warmup", "1", "--threads", "1"]


@pytest.mark.slow  # a fresh interpreter per configuration (peak RSS)
def test_bench_prune_json_and_table(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(SentryAttend(NARROW), tmp_path / "tiny")
    assert main(["bench", "prune", "--checkpoint", str(checkpoint), *ARGS, "--matmul-size", "256", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {
        "machine",
        "plan_method",
        "subset",
        "runtime_policy",
        "width_multiplier",
        "dense_weights",
        "configurations",
        "targets",
    }
    assert report["runtime_policy"] == "auto" and report["width_multiplier"] == 1
    assert report["machine"]["matmul_peak_gflops"]["1"] > 0
    assert report["dense_weights"].startswith("random init")  # no trained dense twin of this tiny shape
    by_name = {c["name"]: c for c in report["configurations"]}
    assert list(by_name) == ["dense-mha", "sentryattend", "magnitude@0.25", "magnitude@0.5"]
    dense, sparse, half = by_name["dense-mha"], by_name["sentryattend"], by_name["magnitude@0.5"]
    # Dense MHA has a K/V per head; pruning removes heads, K/V groups and channels.
    assert dense["parameters"] > sparse["parameters"] > by_name["magnitude@0.25"]["parameters"] > half["parameters"]
    assert dense["gflops"] > sparse["gflops"] > half["gflops"] > 0
    assert dense["weight_mb"] > half["weight_mb"]
    for configuration in report["configurations"]:
        assert configuration["peak_rss_mb"] > configuration["model_rss_mb"] >= 0
        assert configuration["runtime"]["1"] in RUNTIMES
        for latency in (configuration["latency_ms"]["1"], configuration["eager_latency_ms"]["1"]):
            assert 0 < latency["p50"] <= latency["p95"]
        assert 0 < configuration["flops_fraction_of_peak"]["1"]
    targets = report["targets"]
    assert targets["ratio"] == 0.5 and targets["latency_speedup_p50"]["1"] > 0
    assert targets["latency_speedup_vs_unpruned_p50"]["1"] > 0
    assert targets["eager_latency_speedup_vs_unpruned_p50"]["1"] > 0
    assert 0 < targets["weight_memory_reduction"] < 1

    # The human-readable table renders the same report.
    table = format_table(report)
    assert "| magnitude@0.5 |" in table and "at ratio 0.5 vs dense multi-head" in table
    assert "at ratio 0.5 vs unpruned SentryAttend" in table


@pytest.mark.slow  # a fresh interpreter per configuration (peak RSS)
def test_bench_prune_times_a_wider_model_under_the_forced_runtime(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(SentryAttend(NARROW), tmp_path / "tiny")
    widened = ["--ratios", "0.5", "--width-multiplier", "2", "--runtime", "onnxruntime", "--matmul-size", "64"]
    assert main(["bench", "prune", "--checkpoint", str(checkpoint), *ARGS, *widened, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["width_multiplier"] == 2 and report["runtime_policy"] == "onnxruntime"
    by_name = {c["name"]: c for c in report["configurations"]}
    assert all(c["runtime"]["1"] == "onnxruntime" for c in report["configurations"])
    assert by_name["sentryattend"]["parameters"] > sum(p.numel() for p in SentryAttend(NARROW).parameters())
    assert by_name["sentryattend"]["parameters"] > by_name["magnitude@0.5"]["parameters"]
    assert "width x2" in format_table(report)
