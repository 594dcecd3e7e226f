"""bench offload's arithmetic and verdicts, without ROS."""

from __future__ import annotations

from sentryfuse_ros.bench.offload_bench import TARGETS, comparison, meets, scenarios
from sentryfuse_ros.bench.offload_figures import (Received, RunRecord, between, correct_in, first_per_stamp,
                                                  longest_gap_s, pooled, resume_s)


def received(at, stamp, origin="local", latency_ms=10.0, node_ms=2.0):
    return Received(at, latency_ms, stamp, origin, node_ms)


def test_scenarios_put_the_references_first_and_name_the_latencies():
    names = [s["name"] for s in scenarios([0, 20, 100], 20)]
    assert names == ["local-unpruned", "local", "offload-0ms", "offload-20ms", "offload-100ms", "drop-20ms"]
    assert [s["offload"] for s in scenarios([20], 20)] == [False, False, True, True]


def test_the_first_prediction_per_stamp_is_the_earliest_received():
    records = [received(1.0, 7, "local", 12.0), received(1.2, 7, "remote", 220.0), received(1.5, 8, "local", 9.0)]
    first = first_per_stamp(records)
    assert [(r.stamp_ns, r.origin) for r in first] == [(7, "local"), (8, "local")]
    # An answer inside a window to a local prediction before it is not a first prediction there.
    assert between(first_per_stamp(records), 1.1, 2.0) == [records[2]]


def test_gaps_count_the_ends_of_the_stretch():
    records = [received(t, i) for i, t in enumerate((1.0, 1.2, 1.9))]
    assert longest_gap_s(records, 0.5, 2.0) == 0.7
    assert longest_gap_s(records, 2.0, 3.0) == 1.0  # nothing inside: the whole stretch
    assert longest_gap_s(records, 3.0, 3.0) is None


def test_resume_is_the_first_remote_after_the_link_returns():
    records = [received(1.0, 1, "remote"), received(5.0, 2, "local"), received(5.4, 2, "remote")]
    assert resume_s(records, 4.9) == 0.5
    assert resume_s(records, 6.0) is None


def test_accuracy_counts_samples_that_start_in_the_window():
    scored = {100: True, 200: False, 300: True, 400: True}
    assert correct_in(scored, 150, 350) == (1, 2)


def _record(cpu, correct, samples, firsts, drop=None):
    return RunRecord(window_s=50.0, received=firsts, first=firsts, robot_cpu_core={"perception": cpu, "sensor_sim": 0.1},
                     base_cpu_core={}, correct=correct, samples=samples, diagnostics={}, drop=drop)


def test_repeats_pool_samples_and_latencies_and_average_the_cpu():
    runs = [_record(0.04, 8, 10, [received(1, 1, latency_ms=10.0)]),
            _record(0.06, 2, 10, [received(2, 2, latency_ms=90.0)])]
    figures = pooled(runs, "perception")
    assert figures["robot_cpu_core"] == 0.05 and figures["robot_cpu_core_per_run"] == [0.04, 0.06]
    assert figures["accuracy"] == 50.0 and figures["samples"] == 20
    assert figures["first_per_stamp_ms"]["p99"] == 90.0 and figures["first_per_stamp_p99_per_run"] == [10.0, 90.0]


def _figures(cpu, accuracy, first_p99, node_p99=3.0, drop=None):
    figures = {"robot_cpu_core": cpu, "accuracy": accuracy, "first_per_stamp_ms": {"p99": first_p99},
               "local_node_ms": {"p99": node_p99}}
    if drop is not None:
        figures["drop"] = drop
    return figures


def test_verdicts_follow_the_targets():
    drop = [{"longest_gap_during_s": 0.7, "longest_gap_before_s": 0.6, "prediction_period_s": 0.2, "resume_s": 0.9},
            {"longest_gap_during_s": 0.9, "longest_gap_before_s": 0.6, "prediction_period_s": 0.2, "resume_s": 1.5}]
    report = {"scenarios": {
        "local-unpruned": _figures(0.040, 70.0, 50.0), "local": _figures(0.040, 65.0, 60.0),
        "offload-20ms": _figures(0.041, 69.5, 55.0), "offload-100ms": _figures(0.041, 69.0, 61.0),
        "drop-20ms": _figures(0.041, 69.0, 55.0, drop=drop)}}
    rows = comparison(report)
    assert rows["offload-20ms"]["cpu_over_local"] == 1.025
    assert rows["offload-20ms"]["accuracy_minus_unpruned"] == -0.5
    assert rows["drop-20ms"]["drop_extra_gap_periods"] == 1.5  # the worse run
    assert rows["drop-20ms"]["resume_s"] == 1.5
    verdicts = meets(rows)
    assert verdicts == {"cpu_at_20ms": False, "accuracy_at_20ms": True, "drop_no_gap": False, "drop_resume": True,
                        "first_p99_at_100ms": False}
    assert TARGETS["cpu_over_local_max"] == 0.5


def test_a_missing_scenario_meets_nothing():
    assert not any(meets({}).values())
