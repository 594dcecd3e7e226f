"""`sentryfuse bench prune` on a tiny checkpoint: it runs, and its --json carries the documented keys."""

import json

import torch

from sentryfuse_ros.bench.prune_bench import format_table
from sentryfuse_ros.cli import main
from sentryfuse_ros.model import SentryAttend, SentryAttendConfig, save_checkpoint

TINY = SentryAttendConfig(d_model=16, n_layers=2, n_heads=4, n_kv_groups=2, head_dim=4, ffn_dim=16, dropout=0.0)
ARGS = ["--method", "magnitude", "--ratios", "0.25,0.5", "--runs", "5", "--warmup", "1", "--threads", "1"]


def test_bench_prune_json_and_table(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(SentryAttend(TINY), tmp_path / "tiny")
    assert main(["bench", "prune", "--checkpoint", str(checkpoint), *ARGS, "--matmul-size", "256", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"machine", "plan_method", "subset", "dense_weights", "configurations", "targets"}
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
        latency = configuration["latency_ms"]["1"]
        assert 0 < latency["p50"] <= latency["p95"]
        assert 0 < configuration["flops_fraction_of_peak"]["1"]
    targets = report["targets"]
    assert targets["ratio"] == 0.5 and targets["latency_speedup_p50"]["1"] > 0
    assert 0 < targets["weight_memory_reduction"] < 1

    # The human-readable table renders the same report.
    table = format_table(report)
    assert "| magnitude@0.5 |" in table and "at ratio 0.5 vs dense multi-head" in table
