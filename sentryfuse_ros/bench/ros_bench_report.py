"""`sentryfuse bench ros` figures: percentile summaries and the human-readable table."""

from __future__ import annotations

from sentryfuse_ros.bench.timing import percentile


def distribution(values_ms: list[float]) -> dict:
    """count, nearest-rank p50/p95/p99 and max, in ms (None when there is nothing to summarise)."""
    if not values_ms:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values_ms)
    summary = {f"p{round(100 * q)}": round(percentile(ordered, q), 4) for q in (0.50, 0.95, 0.99)}
    return {"count": len(ordered), **summary, "max": round(ordered[-1], 4)}


def rate_summary(rates_hz: list[float], expected_hz: float) -> dict:
    """Nominal rate, and the median and 5th percentile of the measured ones (the low tail shows a
    starved simulator)."""
    ordered = sorted(rates_hz)
    low, median = (round(percentile(ordered, q), 1) if ordered else None for q in (0.05, 0.50))
    return {"expected": round(expected_hz, 1), "p50": median, "p5": low, "count": len(ordered)}


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(name: str, d: dict, digits: int = 1) -> tuple[str, ...]:
    return (name, str(d["count"]), *(_ms(d[key], digits) for key in ("p50", "p95", "p99", "max")))


def _grid(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    lines += ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in rows]
    return lines


def format_table(report: dict) -> str:
    r, targets, meets = report, report["targets"], report["meets"]
    head = (f"sentryfuse bench ros: {r['duration_s']:g} s of {r['source']} data through sensor_sim, heartbeat_monitor "
            f"and inference_node at {'/'.join(f'{hz:g}' for hz in r['inference_rate_hz'].values())} Hz "
            f"(full/normal/low/critical; {r['predictions']} predictions)")
    lines = [head, "", "latency, ms"]
    rows = [_row("end to end (all)", r["latency_ms"])]
    rows += [_row(f"  live {name}", d) for name, d in r["latency_by_live_set_ms"].items()]
    rows += [_row("node inference_time_ms", r["inference_time_ms"]),
             _row("end to end - inference", r["latency_outside_inference_ms"])]
    lines += _grid(("", "n", "p50", "p95", "p99", "max"), rows)
    switch = r["plan_switch"]
    lines += ["", "plan switch, ms"]
    lines += _grid(("", "n", "p50", "p95", "p99", "max"), [
        _row("PlanCache.get, cached plan", switch["cached_get_ms"], 4),
        _row("ModalityState -> Prediction", switch["over_ros_ms"]),
    ])
    lines.append(f"(a cold plan build, the switch without the cache, takes up to {switch['plan_build_max_ms']:.1f} ms; "
                 f"{switch['over_ros_superseded']} situation changes superseded before their plan showed up)")
    rates = ", ".join(f"{name} {rate['expected']:g}: {_ms(rate['p50'])} / {_ms(rate['p5'])}"
                      for name, rate in r["sensor_rates_hz"].items())
    lines += ["", "sensor rates measured by heartbeat_monitor, Hz (nominal: median / 5th percentile)", rates]
    lines += ["", f"CPU, % of one core over {r['cpu_window_s']:g} s"]
    lines.append("  ".join(f"{name} {percent:.1f}" for name, percent in r["cpu_percent"].items())
                 + f"  (bench observer {r['bench_cpu_percent']:.1f}; {r['cpu_count']} cores, "
                 f"load average {r['load_average']})")
    a = r["accuracy"]
    lines += ["", f"accuracy over {a['samples']} scored samples ({a['samples_played']} played), %"]
    lines.append(f"live {_ms(a['live_accuracy'], 2)}  offline, same plans and samples {_ms(a['offline_accuracy'], 2)}  "
                 f"difference {_ms(a['difference_points'], 2)} points "
                 f"(paired s.e. {_ms(a['difference_stderr_points'], 2)}; right only live {a['live_only_correct']}, "
                 f"only offline {a['offline_only_correct']}; same class predicted on {_ms(a['agreement'], 1)} %; "
                 f"label mismatches {a['label_mismatches']})")
    lines += _grid(("plan", "samples", "live ok", "offline ok"), [
        (plan, str(e["samples"]), str(e["live_correct"]), str(e["offline_correct"])) for plan, e in a["by_plan"].items()
    ]) if a["by_plan"] else []
    lines += ["", "targets"]
    verdict = {name: "met" if met else "MISSED" for name, met in meets.items()}
    lines.append(f"end-to-end p99 <= {targets['latency_p99_ms']:g} ms: {verdict['latency']}; "
                 f"plan switch p99 <= {targets['plan_switch_p99_ms']:g} ms: {verdict['plan_switch']}; "
                 f"accuracy within {targets['accuracy_points']:g} point of offline: {verdict['accuracy']}")
    lines.append(f"node logs: {r['node_log']}")
    return "\n".join(lines)
