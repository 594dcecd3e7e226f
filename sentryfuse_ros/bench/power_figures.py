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
    # The power policy's (shipped policy, each level against full):
    "critical_over_full_cpu": 0.25,
    "low_over_full_cpu": 0.50,
    "critical_over_full_accuracy": 0.90,
    "normal_over_full_accuracy": 0.98,
    "onset_to_correct_p50_ms": 300.0,  # every level
    "change_fewer_forwards": 3.0,  # rate-triggered forwards per sample / change-triggered, at full
    "change_accuracy_loss_points": 1.0,  # at most
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
        "predictions_per_sample": round(len(timings) * sample_period_s / seconds, 2),
        "onset_to_correct_ms": ledger.onset(start.ros_ns, end.ros_ns),
        "accuracy": round(100 * sum(s.correct for s in samples) / len(samples), 2) if samples else None,
        "e2e_ms": distribution([t.end_to_end_ms for t in timings]),
        "breakdown_ms_per_s": parts,
        "runtime": end.inference.get("runtime") or None,
        "executor": end.inference.get("executor") or None,
        "ingestion": end.inference.get("ingestion") or None,
        "trigger": end.inference.get("trigger") or None,
        "consumed": end.inference.get("consumed") or None,
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


def _ratio(levels: dict, top: str, bottom: str, pick) -> float | None:
    try:
        numerator, denominator = pick(levels[top]), pick(levels[bottom])
    except KeyError:
        return None
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def policy_comparison(by_policy: dict[str, dict]) -> dict:
    """Per policy, each level's product CPU and live accuracy over full's; and the change trigger
    at full against the shipped policy's full level (forwards per sample, accuracy)."""
    compared = {}
    for policy, levels in by_policy.items():
        if policy == "change-at-full" or "full" not in levels:
            continue
        compared[policy] = {
            "cpu_over_full": {name: _ratio(levels, name, "full", lambda f: f["cpu_core"]["product"]) for name in levels},
            "accuracy_over_full": {name: _ratio(levels, name, "full", lambda f: f["accuracy"]) for name in levels},
        }
    change, rate = by_policy.get("change-at-full", {}).get("full"), by_policy.get("shipped", {}).get("full")
    if change and rate and change.get("reached") and rate.get("reached"):
        fewer = (round(rate["predictions_per_sample"] / change["predictions_per_sample"], 2)
                 if change["predictions_per_sample"] else None)
        loss = (round(rate["accuracy"] - change["accuracy"], 2)
                if rate["accuracy"] is not None and change["accuracy"] is not None else None)
        compared["change_at_full"] = {
            "rate_predictions_per_sample": rate["predictions_per_sample"],
            "change_predictions_per_sample": change["predictions_per_sample"],
            "fewer_forwards": fewer, "accuracy_rate": rate["accuracy"], "accuracy_change": change["accuracy"],
            "accuracy_loss_points": loss,
        }
    return compared


def cpu_ratio(levels: dict, top: str, bottom: str) -> float | None:
    try:
        numerator, denominator = levels[top]["cpu_core"]["product"], levels[bottom]["cpu_core"]["product"]
    except KeyError:
        return None
    return round(numerator / denominator, 3) if denominator > 0 else None


def _at_most(value, limit) -> bool:
    return value is not None and value <= limit


def _at_least(value, limit) -> bool:
    return value is not None and value >= limit


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
    shipped = report.get("comparison", {}).get(report.get("policy", "shipped"))
    if shipped:
        cpu, accuracy = shipped["cpu_over_full"], shipped["accuracy_over_full"]
        if "critical" in cpu:
            met["critical_over_full_cpu"] = _at_most(cpu["critical"], t["critical_over_full_cpu"])
            met["critical_over_full_accuracy"] = _at_least(accuracy["critical"], t["critical_over_full_accuracy"])
        if "low" in cpu:
            met["low_over_full_cpu"] = _at_most(cpu["low"], t["low_over_full_cpu"])
        if "normal" in accuracy:
            met["normal_over_full_accuracy"] = _at_least(accuracy["normal"], t["normal_over_full_accuracy"])
        met["onset_to_correct_p50_ms"] = all(
            _at_most(level.get("onset_to_correct_ms", {}).get("p50"), t["onset_to_correct_p50_ms"])
            for level in report["levels"].values())
    change = report.get("comparison", {}).get("change_at_full")
    if change:
        met["change_fewer_forwards"] = (_at_least(change["fewer_forwards"], t["change_fewer_forwards"])
                                        and _at_most(change["accuracy_loss_points"], t["change_accuracy_loss_points"]))
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
