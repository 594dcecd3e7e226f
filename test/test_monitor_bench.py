"""`sentryfuse bench monitor` scoring: detection latency per scheduled drop, false dropouts vs
publisher stalls, recovery times (fed with a recorded timeline, no processes)."""

import pytest

from sentryfuse_ros.bench.monitor_bench import Drop, dropout_schedule, format_table, score

RATES = {"camera": 15.0, "imu": 100.0, "audio": 20.0}
TIMEOUTS = {"camera": 0.163, "imu": 0.05, "audio": 0.13}


class Timeline:
    """What the bench's observer records: ModalityState transitions and sensor stamps."""

    def __init__(self, stamp_gaps=None):
        self.transitions = {s: [(1.0, True, 0.99)] for s in RATES}  # all alive at t=1
        self._gaps = stamp_gaps or {}

    def publisher_gap_s(self, sensor, around):
        return self._gaps.get((sensor, round(around, 2)), 1.0 / RATES[sensor])


def test_schedule_drops_each_sensor_in_turn_after_the_healthy_window():
    drops = dropout_schedule(healthy_s=10.0, repeats=2, drop_s=1.0)
    assert [(d.sensor, d.start) for d in drops][:4] == [("camera", 10.0), ("imu", 13.0), ("audio", 16.0),
                                                        ("camera", 19.0)]
    assert len(drops) == 6 and all(d.end - d.start == 1.0 for d in drops)
    staggered = dropout_schedule(healthy_s=10.0, repeats=4, drop_s=1.0, stagger_s=0.5)
    phases = sorted(round(d.start % 0.5, 3) for d in staggered)
    assert len(set(phases)) == len(staggered) and phases[-1] - phases[0] > 0.3  # spread over the period
    assert all(b.start - a.end >= 2.0 for a, b in zip(staggered, staggered[1:]))


def test_latency_is_from_the_last_message_to_the_state_change():
    t0 = 100.0
    drops = [Drop("camera", 10.0, 11.0), Drop("imu", 13.0, 14.0)]
    timeline = Timeline()
    timeline.transitions["camera"] += [(t0 + 10.17, False, t0 + 9.995), (t0 + 12.0, True, t0 + 11.9)]
    timeline.transitions["imu"] += [(t0 + 13.06, False, t0 + 13.0)]
    results, unscheduled = score(timeline, t0, drops, RATES, TIMEOUTS, healthy=(t0 + 2, t0 + 9.8))
    assert results["camera"].latencies_ms == [pytest.approx(175.0)]
    assert results["camera"].recoveries_s == [pytest.approx(1.0)]
    assert results["imu"].latencies_ms == [pytest.approx(60.0)]
    camera = results["camera"].summary()
    assert camera["meets_target"] and camera["detected"] == 1 and camera["target_ms"] == pytest.approx(183.3)
    assert unscheduled == []


def test_missed_or_slow_detections_fail_the_target():
    t0 = 0.0
    drops = [Drop("imu", 10.0, 11.0), Drop("imu", 13.0, 14.0)]
    timeline = Timeline()
    timeline.transitions["imu"] += [(10.09, False, 10.0)]  # 90 ms > 70 ms target; second drop missed
    results, _ = score(timeline, t0, drops, RATES, TIMEOUTS, healthy=(2.0, 9.8))
    summary = results["imu"].summary()
    assert summary["detected"] == 1 and summary["drops"] == 2 and not summary["meets_target"]


def test_unscheduled_deaths_are_false_alarms_only_if_the_stream_never_paused():
    t0 = 0.0
    timeline = Timeline(stamp_gaps={("imu", 5.0): 0.012, ("camera", 6.0): 0.25})
    timeline.transitions["imu"] += [(5.0, False, 4.95)]
    timeline.transitions["camera"] += [(6.0, False, 5.8)]
    _, unscheduled = score(timeline, t0, [Drop("audio", 20.0, 21.0)], RATES, TIMEOUTS, healthy=(2.0, 19.8))
    by_sensor = {d.sensor: d for d in unscheduled}
    assert by_sensor["imu"].false_alarm and by_sensor["imu"].in_healthy_window
    assert not by_sensor["camera"].false_alarm and by_sensor["camera"].publisher_gap_ms == 250.0


def test_table_lists_every_sensor_and_the_verdict():
    t0 = 0.0
    drops = [Drop("camera", 10.0, 11.0)]
    timeline = Timeline()
    timeline.transitions["camera"] += [(10.2, False, 10.03)]
    results, _ = score(timeline, t0, drops, RATES, TIMEOUTS, healthy=(2.0, 9.8))
    report = {"healthy_s": 7.8, "repeats": 1, "drop_s": 1.0, "source": "synthetic",
              "sensors": [results[s].summary() for s in RATES], "monitor_cpu_percent": 8.0,
              "sim_cpu_percent": 9.0, "cpu_count": 2, "load_average": [1.0, 1.0, 1.0],
              "false_dropouts_healthy": 0, "false_dropouts_total": 0, "publisher_stalls_healthy": 0,
              "publisher_stalls_total": 0, "unscheduled_deaths": [], "meets_target": False}
    table = format_table(report)
    assert all(sensor in table for sensor in RATES) and "170.0" in table and "TARGET MISSED" in table


def test_a_check_period_lengthens_the_target_and_runs_are_compared_side_by_side():
    from sentryfuse_ros.bench.monitor_bench import check_period_args, format_comparison

    assert check_period_args(None) == []
    assert check_period_args(0.5) == ["-p", "power.check_periods_s:=[0.500000,0.500000,0.500000,0.500000]"]
    drops = [Drop("camera", 10.0, 11.0)]
    timeline = Timeline()
    timeline.transitions["camera"] += [(10.5, False, 10.03)]  # 470 ms: within 163 + 500 ms
    results, _ = score(timeline, 0.0, drops, RATES, TIMEOUTS, healthy=(2.0, 9.8), check_period_s=0.5)
    camera = results["camera"].summary()
    assert camera["target_ms"] == pytest.approx(683.3) and camera["meets_target"]
    reports = [{"check_period_s": p, "monitor_cpu_percent": cpu, "meets_target": True,
                "sensors": [results[s].summary() for s in RATES]} for p, cpu in ((0.0, 9.5), (0.5, 2.1))]
    table = format_comparison(reports)
    assert "monitor CPU %" in table and "9.5" in table and "2.1" in table and "0.5" in table
