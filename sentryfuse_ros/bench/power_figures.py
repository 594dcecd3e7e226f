"""`sentryfuse bench power`'s figures of one measuring window, and the verdict on its targets."""

from __future__ import annotations

import statistics

from sentryfuse_ros.bench.power_levels import (breakdown, counter_deltas, cpu_cores, inference_process, joules,
                                               per_prediction_ms, received_fraction)
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES

TARGETS = {
    "full_product_cpu_core": 0.10,
    "full_inference_cpu_ms_per_prediction": 5.0,
    "full_e2e_p99_ms": 10.0,
    "robot_frames_received_fraction": 0.95,
    "robot_product_cpu_core": 0.25,
    "robot_e2e_p99_ms": 20.0,
}


def level_figures(window, observer, ledger, inference_key: str | None, sample_period_s: float) -> dict:
    """Everything measured between a LevelWindow's two marks (power_run.py); a level that was never
    reached has only held/reached = False."""
    from sentryfuse_ros.bench.ros_bench_report import distribution  # torch, through bench.timing

    start, end = window.start, window.end
    if start is None or end is None or end.at <= start.at:
        return {"held": False, "reached": False}
    seconds = end.at - start.at
    cores = cpu_cores(start.cpu_s, end.cpu_s, seconds)
    timings = observer.timings[start.predictions:end.predictions]
    # The state in force at the window's start, and every one received during it.
    states = observer.states[max(0, start.states - 1):end.states]
    levels_seen = sorted({LEVEL_NAMES[level] for _, level, _, _ in states}, key=LEVEL_NAMES.index)
    live_sets = sorted({"+".join(live) or "none" for _, _, live, _ in states})
    period_ns = int(sample_period_s * 1e9)
    starts = [stamp for stamp, _ in ledger.score.truths]
    samples = [s for s in ledger.scored_samples()
               if start.ros_ns <= starts[s.position] and starts[s.position] + period_ns <= end.ros_ns]
    diag_s = (end.inference_stamp_s - start.inference_stamp_s
              if end.inference_stamp_s is not None and start.inference_stamp_s is not None else 0.0)
    inference_cores = cores.get(inference_key) if inference_key else None
    parts = breakdown(start.inference, end.inference, diag_s, inference_cores)
    counted = sum(ms for part, ms in parts.items() if part != "rest") / 1e3 if parts else None
    figures = {
        "reached": True,
        "held": levels_seen == [window.plan.name],
        "power_level_observed": levels_seen,
        "live_modalities_observed": live_sets,
        "battery_charge": window.plan.charge,
        "window_s": round(seconds, 2),
        "cpu_core": cores,
        "bench_cpu_core": round((end.bench_cpu_s - start.bench_cpu_s) / seconds, 4),
        "predictions": len(timings),
        "predictions_per_s": round(len(timings) / seconds, 3),
        # inference: the whole process hosting inference_node (with the monitor when they are composed);
        # inference_counted: only the node's own `cpu_ms <part>` counters.
        "cpu_ms_per_prediction": {"product": per_prediction_ms(cores["product"], seconds, len(timings)),
                                  "inference": per_prediction_ms(inference_cores, seconds, len(timings)),
                                  "inference_counted": per_prediction_ms(counted, seconds, len(timings))},
        "prune_ratios": sorted(set(observer.ratios[start.predictions:end.predictions])),
        "samples": len(samples),
        "accuracy": round(100 * sum(s.correct for s in samples) / len(samples), 2) if samples else None,
        "e2e_ms": distribution([t.end_to_end_ms for t in timings]),
        "breakdown_ms_per_s": parts,
        "runtime": end.inference.get("runtime") or None,
        "executor": end.inference.get("executor") or None,
        "ingestion": end.inference.get("ingestion") or None,
        "delivery": {
            "inference_node": counter_deltas(start.inference, end.inference, MODALITIES),
            "heartbeat_monitor": {sensor: delta for sensor in MODALITIES for delta in
                                  counter_deltas(start.sensors.get(sensor, {}), end.sensors.get(sensor, {}),
                                                 (sensor,), "{counter}").values()},
        },
        "camera_rate_hz": (round(statistics.median(rate for _, _, _, rate in states), 2) if states else None),
        "joules": joules(start.energy, end.energy),
    }
    return figures


def frames_received(figures: dict, nominal_hz: float) -> tuple[float | None, str]:
    """The camera frames that reached inference_node: from its counters, else the monitor's rate."""
    fraction = received_fraction(figures.get("delivery", {}).get("inference_node", {}).get("camera"))
    if fraction is not None:
        return fraction, "inference_node counters: (published - lost) / published"
    rate = figures.get("camera_rate_hz")
    if rate is None:
        return None, "no figures"
    return round(min(1.0, rate / nominal_hz), 4), f"camera rate measured by heartbeat_monitor / {nominal_hz:g} Hz"


def figures_of(live, ledger, sample_period_s: float) -> tuple[dict, str | None]:
    """Figures of every level of a run (power_run.LiveLevels), and the process hosting inference_node."""
    key = inference_process(live.cmdlines)
    return {w.plan.name: level_figures(w, live.observer, ledger, key, sample_period_s) for w in live.windows}, key


def cpu_ratio(levels: dict, top: str, bottom: str) -> float | None:
    try:
        numerator, denominator = levels[top]["cpu_core"]["product"], levels[bottom]["cpu_core"]["product"]
    except KeyError:
        return None
    return round(numerator / denominator, 3) if denominator > 0 else None


def _at_most(value, limit) -> bool:
    return value is not None and value <= limit


def meets(report: dict) -> dict[str, bool]:
    """Each target, met or not; a figure that could not be measured does not meet its target."""
    t, full = TARGETS, report["levels"].get("full", {})
    met = {}
    if full:
        met["full_product_cpu_core"] = _at_most(full.get("cpu_core", {}).get("product"), t["full_product_cpu_core"])
        met["full_inference_cpu_ms_per_prediction"] = _at_most(
            full.get("cpu_ms_per_prediction", {}).get("inference"), t["full_inference_cpu_ms_per_prediction"])
        met["full_e2e_p99_ms"] = _at_most(full.get("e2e_ms", {}).get("p99"), t["full_e2e_p99_ms"])
    met["levels_held"] = all(level.get("held") for level in report["levels"].values())
    robot = report.get("robot_rates")
    if robot is not None:
        fraction = robot.get("frames_received_fraction")
        met["robot_frames_received_fraction"] = fraction is not None and fraction >= t["robot_frames_received_fraction"]
        met["robot_product_cpu_core"] = _at_most(robot.get("cpu_core", {}).get("product"), t["robot_product_cpu_core"])
        met["robot_e2e_p99_ms"] = _at_most(robot.get("e2e_ms", {}).get("p99"), t["robot_e2e_p99_ms"])
        met["robot_level_held"] = bool(robot.get("held"))
    return met


def notes(report: dict) -> list[str]:
    found = []
    runs = [*report["levels"].values(), *([report["robot_rates"]] if report.get("robot_rates") else [])]
    if any(run.get("reached") and not run.get("breakdown_ms_per_s") for run in runs):
        found.append("inference_node's diagnostics carry no `cpu_ms <part>` counters: no CPU breakdown")
    if report["inference_process"] is None:
        found.append(f"no process is known to host inference_node (processes {report['process_keys']}): "
                     "no inference CPU per prediction")
    if any(not run.get("reached") for run in runs):
        found.append("a power level was never reported by ModalityState within its hold: no figures for it")
    if any(run.get("reached") and not run.get("samples") for run in runs):
        found.append("a window held no whole sample: no accuracy for it (hold longer)")
    if "no power counters" in report["power_counters"]:
        found.append("no power counters: no joules")
    return found
