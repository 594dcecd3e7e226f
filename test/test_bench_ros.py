"""`sentryfuse bench ros`: its bookkeeping without ROS, and one short run of the whole system."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO_ROOT
from sentryfuse_ros.bench.offline_replay import PlanMismatch, offline_labels, synthetic_inputs
from sentryfuse_ros.bench.paired_accuracy import compare
from sentryfuse_ros.bench.plan_switch import SwitchTracker, time_cached_switches
from sentryfuse_ros.bench.ros_bench import CACHED_SWITCHES
from sentryfuse_ros.bench.ros_bench_setup import bench_params, repeated_schedule
from sentryfuse_ros.bench.sample_ledger import PlanUsed, SampleLedger, ScoredSample
from sentryfuse_ros.cli import main
from sentryfuse_ros.launch_plan import params_key, processes
from sentryfuse_ros.scoring import RunningScore
from sentryfuse_ros.modalities import MODALITY_SUBSETS
from sentryfuse_ros.model import load_checkpoint
from sentryfuse_ros.model.gate_checkpoint import load_gate
from sentryfuse_ros.nodes.fault_schedule import FaultSchedule
from sentryfuse_ros.nodes.sim_sources import SyntheticSource
from sentryfuse_ros.pruning.plan_cache import PlanCache

FULL = PlanUsed("camera+imu+audio@0.00", ("camera", "imu", "audio"), 0.0)
NO_CAMERA = PlanUsed("imu+audio@0.20", ("imu", "audio"), 0.2)


@pytest.fixture(scope="module")
def tiny_models(tiny_weights):
    """(backbone, gate, weights path, gate path) of conftest's tiny_weights."""
    weights, gate = tiny_weights
    return load_checkpoint(weights).model, load_gate(gate).gate, weights, gate


# --- which sample, which plan ----------------------------------------------------------------
def test_ledger_maps_the_kth_announcement_to_start_plus_k_and_keeps_the_last_predictions_plan():
    events = [
        ("truth", 100, "8"),
        ("prediction", 110, "1", NO_CAMERA),  # early, mixed window: overwritten below
        ("prediction", 190, "8", FULL),
        ("truth", 200, "9"),
        ("prediction", 150, "3", NO_CAMERA),  # stamped inside sample 0, after it was scored: ignored
        ("prediction", 290, "4", FULL),
        ("prediction", 295, "9", NO_CAMERA),  # the last one before sample 1 ends: it counts
        ("truth", 300, "0"),  # wraps: index (8 + 2) % 10
        ("prediction", 390, "5", FULL),  # sample 2 never finishes: not scored
    ]
    ledger, reference = SampleLedger(start_index=8, source_size=10), RunningScore()
    for kind, stamp, label, *plan in events:
        if kind == "truth":
            ledger.on_truth(stamp, label)
            reference.on_truth(stamp, label)
        else:
            ledger.on_prediction(stamp, label, plan[0])
            reference.on_prediction(stamp, label)

    samples = ledger.scored_samples()
    assert [(s.position, s.index, s.truth, s.predicted, s.plan) for s in samples] == [
        (0, 8, "8", "8", FULL), (1, 9, "9", "9", NO_CAMERA)]
    assert ledger.index_of(2) == 0
    # Live accuracy is exactly the monitor's running score, sample by sample.
    assert {ledger.score.truths[s.position][0]: s.correct for s in samples} == reference.scored
    assert reference.scored == {100: True, 200: True}


def test_ledger_skips_samples_without_prediction_and_predictions_before_any_truth():
    ledger = SampleLedger(start_index=0, source_size=5)
    ledger.on_prediction(50, "1", FULL)
    ledger.on_truth(100, "0")
    ledger.on_truth(200, "1")
    ledger.on_prediction(250, "1", FULL)
    ledger.on_truth(300, "2")
    assert [(s.position, s.index) for s in ledger.scored_samples()] == [(1, 1)]


def test_paired_comparison_counts_discordant_samples_and_label_mismatches():
    samples = [ScoredSample(k, k, truth, predicted, plan) for k, (truth, predicted, plan) in enumerate([
        ("1", "1", FULL), ("2", "2", FULL), ("3", "0", NO_CAMERA), ("4", "4", NO_CAMERA)])]
    offline = ["1", "7", "3", "4"]  # sample 1 right only live, sample 2 right only offline
    result = compare(samples, offline, ["1", "2", "3", "5"])
    assert result["samples"] == 4 and result["label_mismatches"] == 1
    assert result["live_accuracy"] == result["offline_accuracy"] == 75.0
    assert result["difference_points"] == 0.0 and result["difference_stderr_points"] == pytest.approx(35.36, abs=0.01)
    assert (result["live_only_correct"], result["offline_only_correct"], result["agreement"]) == (1, 1, 50.0)
    assert result["by_plan"] == {
        "camera+imu+audio@0.00": {"samples": 2, "live_correct": 2, "offline_correct": 1},
        "imu+audio@0.20": {"samples": 2, "live_correct": 1, "offline_correct": 2},
    }
    worse = compare(samples, ["1", "7", "0", "4"], ["1", "2", "3", "4"])
    assert worse["difference_points"] == 25.0 and worse["label_mismatches"] == 0
    with pytest.raises(ValueError):
        compare(samples, offline[:3], ["1", "2", "3", "4"])


def test_offline_labels_run_each_samples_own_plan(tiny_models):
    backbone, gate, _, _ = tiny_models
    cache = PlanCache(backbone, gate)
    source = SyntheticSource(6)
    plans = [FULL, NO_CAMERA, FULL, PlanUsed("camera@0.40", ("camera",), 0.4)]
    samples = [ScoredSample(k, k + 2, str(k), "0", plan) for k, plan in enumerate(plans)]
    inputs, labels = synthetic_inputs(source, [s.index for s in samples])
    assert labels == [str((k + 2) % 10) for k in range(4)]
    predicted = offline_labels(cache, samples, inputs)
    with torch.inference_mode():
        one_by_one = [
            str(int(cache.get(s.plan.subset, s.plan.ratio).model(
                {name: inputs[name][row:row + 1] for name in s.plan.subset}).argmax()))
            for row, s in enumerate(samples)
        ]
    assert predicted == one_by_one
    renamed = [ScoredSample(0, 2, "0", "0", PlanUsed("imu+audio@0.30", ("imu", "audio"), 0.2))]
    with pytest.raises(PlanMismatch):
        offline_labels(cache, renamed, inputs)


# --- plan switches -----------------------------------------------------------------------------
def test_switch_tracker_pairs_a_situation_change_with_the_first_prediction_of_its_plan():
    tracker = SwitchTracker(ratio_for=lambda level: (0.0, 0.2, 0.4, 0.6)[level])
    all_three = ("camera", "imu", "audio")
    tracker.on_state(0.0, (), 1)
    tracker.on_state(1.0, all_three, 0)  # start-up: windows filling, not a switch
    tracker.on_prediction(2.0, "camera+imu+audio@0.00")
    tracker.on_state(3.0, ("imu", "audio"), 0)
    tracker.on_state(3.1, ("imu", "audio"), 0)  # repeated heartbeat: same change
    tracker.on_prediction(3.02, "camera+imu+audio@0.00")  # tick before the node saw the state
    tracker.on_prediction(3.05, "imu+audio@0.00")
    tracker.on_state(4.0, ("imu", "audio"), 1)
    tracker.on_state(4.01, ("imu", "audio"), 2)  # changed again before the plan for level 1 ran
    tracker.on_prediction(4.1, "imu+audio@0.40")
    assert tracker.latencies_s == pytest.approx([0.05, 0.09])
    assert tracker.superseded == 1


def test_cached_switches_are_timed_over_every_plan(tiny_models):
    backbone, gate, _, _ = tiny_models
    cache = PlanCache(backbone, gate)
    seconds = time_cached_switches(cache, [0.0, 0.4], switches=500)
    assert len(seconds) == 500 and all(0 < s < 0.1 for s in seconds)
    assert len(cache.plans()) == 2 * len(MODALITY_SUBSETS)


# --- run files -----------------------------------------------------------------------------------
def test_bench_schedule_switches_modalities_and_power_within_one_period():
    data = yaml.safe_load((REPO_ROOT / "config" / "faults" / "bench.yaml").read_text())
    schedule = FaultSchedule.from_dict(data)
    assert schedule.end_s <= 60.0
    assert {f.fault for f in schedule.faults} >= {"drop", "battery_drain"}
    assert schedule.battery(schedule.end_s - 0.1, 1.0)[0] < 0.15  # reaches critical before the swap

    repeated = repeated_schedule(data, every_s=60.0, until_s=150.0)
    ats = [fault["at"] for fault in repeated["faults"]]
    per_cycle = len(data["faults"])
    assert ats[:per_cycle] == [float(f["at"]) for f in data["faults"]]
    assert ats[per_cycle:2 * per_cycle] == [at + 60.0 for at in ats[:per_cycle]]
    assert max(ats) < 150.0 and min(ats[2 * per_cycle:]) >= 120.0
    FaultSchedule.from_dict(repeated)
    with pytest.raises(ValueError, match="longer than the repeat period"):
        repeated_schedule(data, every_s=30.0, until_s=100.0)


def test_bench_params_change_only_the_sims_source_and_start():
    shared = yaml.safe_load((REPO_ROOT / "config" / "sentryfuse.yaml").read_text())
    params = bench_params(shared, "synthetic")
    sim = params[params_key("sensor_sim")]["ros__parameters"]
    assert sim["source"] == "synthetic" and sim["autostart"] is False
    assert shared[params_key("sensor_sim")]["ros__parameters"]["source"] == "dataset"  # the shared file is untouched
    assert params[params_key("heartbeat_monitor")] == shared[params_key("heartbeat_monitor")]


# --- the whole system ------------------------------------------------------------------------------
@pytest.mark.slow  # the bench's node processes over DDS
def test_short_run_reports_latency_switches_cpu_and_accuracy(tiny_models, tmp_path):
    _, _, weights, gate = tiny_models
    command = [sys.executable, "-m", "sentryfuse_ros.cli", "bench", "ros", "--duration", "10", "--source", "synthetic",
               "--weights", str(weights), "--gate", str(gate), "--json"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env, check=False)
    assert done.returncode in (0, 1), done.stderr  # 1: a target missed on a busy test machine
    report = json.loads(done.stdout)
    assert set(report) >= {"latency_ms", "latency_by_live_set_ms", "inference_time_ms", "latency_outside_inference_ms",
                           "plan_switch", "sensor_rates_hz", "cpu_percent", "accuracy", "targets", "meets",
                           "meets_target", "predictions"}
    latency = report["latency_ms"]
    assert latency["count"] == report["predictions"] > 20
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert 0 < report["inference_time_ms"]["p50"] <= report["inference_time_ms"]["p99"]
    assert "camera+imu+audio" in report["latency_by_live_set_ms"]
    cached = report["plan_switch"]["cached_get_ms"]
    assert cached["count"] == CACHED_SWITCHES and 0 < cached["p50"] <= cached["p99"]
    rates = report["sensor_rates_hz"]
    assert set(rates) == {"camera", "imu", "audio"} and rates["imu"]["expected"] == 100.0
    assert all(rate["count"] > 0 and 0 < rate["p5"] <= rate["p50"] for rate in rates.values())
    assert set(report["cpu_percent"]) == {spec.name for spec in processes(composed=True, use_sim=True)}
    assert all(percent > 0 for percent in report["cpu_percent"].values())
    accuracy = report["accuracy"]
    assert accuracy["samples"] >= 3 and accuracy["label_mismatches"] == 0
    assert accuracy["samples_played"] >= accuracy["samples"]
    assert sum(entry["samples"] for entry in accuracy["by_plan"].values()) == accuracy["samples"]


def test_missing_dataset_is_reported_with_the_prepare_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SENTRYFUSE_DATA_DIR", str(tmp_path / "nothing"))
    assert main(["bench", "ros", "--duration", "5"]) == 2
    assert "sentryfuse data prepare" in capsys.readouterr().err
