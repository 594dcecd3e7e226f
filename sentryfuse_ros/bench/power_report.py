"""`sentryfuse bench power` output: the human-readable table and the CPU vs accuracy plot."""

from __future__ import annotations

from pathlib import Path

from sentryfuse_ros.bench.ros_bench_report import _grid


def _fmt(value, digits: int = 2, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value * scale:.{digits}f}"


def _columns(report: dict) -> list[tuple[str, dict]]:
    columns = [(name, figures) for name, figures in report["levels"].items()]
    if report.get("robot_rates") is not None:
        columns.append(("robot@full", report["robot_rates"]))
    return columns


def _process_keys(columns: list[tuple[str, dict]]) -> list[str]:
    keys = {key for _, figures in columns for key in figures.get("cpu_core", {})} - {"product", "sensor_sim"}
    return sorted(keys)


def _rows(columns: list[tuple[str, dict]]) -> list[tuple[str, ...]]:
    def row(label: str, pick, digits: int = 2, scale: float = 1.0) -> tuple[str, ...]:
        return (label, *(_fmt(pick(f), digits, scale) if f.get("reached") else "-" for _, f in columns))

    rows = [row("power level observed", lambda f: "/".join(f["power_level_observed"]) + ("" if f["held"] else " (!)")),
            row("battery charge", lambda f: f["battery_charge"]),
            row("window, s", lambda f: f["window_s"], 1)]
    for key in _process_keys(columns):
        rows.append(row(f"CPU % core {key}", lambda f, k=key: f["cpu_core"].get(k), 1, 100))
    rows += [
        row("CPU % core product", lambda f: f["cpu_core"]["product"], 1, 100),
        row("CPU % core sensor_sim", lambda f: f["cpu_core"].get("sensor_sim"), 1, 100),
        row("CPU % core bench observer", lambda f: f["bench_cpu_core"], 1, 100),
        row("predictions / s", lambda f: f["predictions_per_s"], 2),
        row("CPU ms / prediction, product", lambda f: f["cpu_ms_per_prediction"]["product"], 2),
        row("CPU ms / prediction, inference process", lambda f: f["cpu_ms_per_prediction"]["inference"], 2),
        row("CPU ms / prediction, node's counters", lambda f: f["cpu_ms_per_prediction"]["inference_counted"], 2),
        row("live accuracy %", lambda f: f["accuracy"], 1),
        row("predictions / sample", lambda f: f.get("predictions_per_sample"), 2),
        row("onset -> first correct p50, ms", lambda f: (f.get("onset_to_correct_ms") or {}).get("p50"), 0),
        row("never correct, % of samples", lambda f: (f.get("onset_to_correct_ms") or {}).get("never_fraction"), 1, 100),
        row("trigger", lambda f: f.get("trigger")),
        row("modalities consumed", lambda f: f.get("consumed")),
        row("scored samples", lambda f: str(f["samples"])),
        row("prune ratios", lambda f: ",".join(f"{r:g}" for r in f["prune_ratios"]) or "-"),
        row("e2e ms p50", lambda f: f["e2e_ms"]["p50"], 2),
        row("e2e ms p99", lambda f: f["e2e_ms"]["p99"], 2),
        row("runtime", lambda f: f["runtime"]),
        row("executor", lambda f: f["executor"]),
        row("ingestion", lambda f: f.get("ingestion")),
        row("camera Hz (monitor)", lambda f: f["camera_rate_hz"], 1),
        row("joules", lambda f: f["joules"], 1),
    ]
    parts = sorted({part for _, f in columns for part in f.get("breakdown_ms_per_s", {})},
                   key=lambda part: (part == "rest", part))
    rows += [row(f"inference CPU ms/s: {part}", lambda f, p=part: f["breakdown_ms_per_s"].get(p), 2) for part in parts]
    sensors = sorted({s for _, f in columns for s in f.get("delivery", {}).get("inference_node", {})})
    for sensor in sensors:
        rows.append(row(f"{sensor} published/taken/lost", lambda f, s=sensor: "/".join(
            str(f["delivery"]["inference_node"].get(s, {}).get(c, "-")) for c in ("published", "taken", "lost"))))
    return rows


def _verdict(met: bool | None) -> str:
    return "-" if met is None else "met" if met else "NOT MET"


def format_table(report: dict) -> str:
    columns = _columns(report)
    lines = [f"sentryfuse bench power: {report['source']} data, {report['hold_s']:g} s per power level "
             f"(first {report['settle_s']:g} s after each change skipped); processes {report['process_keys']}, "
             f"inference in {report['inference_process']}", ""]
    lines += _grid(("", *(name for name, _ in columns)), _rows(columns))
    for policy, levels in report.get("policies", {}).items():
        if policy == report.get("policy"):
            continue
        lines += ["", f"policy {policy}:"]
        others = list(levels.items())
        lines += _grid(("", *(name for name, _ in others)), _rows(others))
    for policy, compared in report.get("comparison", {}).items():
        if policy == "change_at_full":
            lines += ["", f"change trigger at full: {compared['change_predictions_per_sample']} predictions per sample "
                          f"vs {compared['rate_predictions_per_sample']} rate-triggered ({compared['fewer_forwards']}x "
                          f"fewer); accuracy {compared['accuracy_change']} vs {compared['accuracy_rate']} % "
                          f"(loss {compared['accuracy_loss_points']} points)"]
            continue
        lines += ["", f"policy {policy}, over full: product CPU "
                      + ", ".join(f"{name} {_fmt(v, 3)}" for name, v in compared["cpu_over_full"].items())
                      + "; live accuracy " + ", ".join(f"{name} {_fmt(v, 3)}"
                                                        for name, v in compared["accuracy_over_full"].items())]
    robot = report.get("robot_rates")
    if robot is not None:
        lines += ["", f"robot rates: {robot['streams']}; frames received "
                      f"{_fmt(robot.get('frames_received_fraction'), 1, 100)} % ({robot.get('frames_received_from')})"]
    lines += ["", f"product CPU critical / full: {_fmt(report['critical_over_full_cpu'], 3)}; "
                  f"energy: {report['power_counters']}; {report['cpu_count']} cores, load average "
                  f"{report['load_average']}", "", "targets"]
    t, m = report["targets"], report["meets"]
    lines += [
        f"  full: product CPU <= {t['full_product_cpu_core']:g} core: {_verdict(m.get('full_product_cpu_core'))}; "
        f"inference CPU per prediction <= {t['full_inference_cpu_ms_per_prediction']:g} ms: "
        f"{_verdict(m.get('full_inference_cpu_ms_per_prediction'))}; "
        f"e2e p99 <= {t['full_e2e_p99_ms']:g} ms: {_verdict(m.get('full_e2e_p99_ms'))}",
        f"  every level held: {_verdict(m.get('levels_held'))}",
        f"  policy: critical / full CPU <= {t['critical_over_full_cpu']:g}: {_verdict(m.get('critical_over_full_cpu'))}; "
        f"low / full CPU <= {t['low_over_full_cpu']:g}: {_verdict(m.get('low_over_full_cpu'))}; "
        f"critical / full accuracy >= {t['critical_over_full_accuracy']:g}: "
        f"{_verdict(m.get('critical_over_full_accuracy'))}; normal / full accuracy >= "
        f"{t['normal_over_full_accuracy']:g}: {_verdict(m.get('normal_over_full_accuracy'))}",
        f"  onset -> first correct p50 <= {t['onset_to_correct_p50_ms']:g} ms at every level: "
        f"{_verdict(m.get('onset_to_correct_p50_ms'))}; change trigger >= {t['change_fewer_forwards']:g}x fewer "
        f"forwards at <= {t['change_accuracy_loss_points']:g} point loss: {_verdict(m.get('change_fewer_forwards'))}",
    ]
    if robot is not None:
        lines.append(
            f"  robot rates: frames >= {t['robot_frames_received_fraction']:.0%}: "
            f"{_verdict(m.get('robot_frames_received_fraction'))}; product CPU <= {t['robot_product_cpu_core']:g} core: "
            f"{_verdict(m.get('robot_product_cpu_core'))}; e2e p99 <= {t['robot_e2e_p99_ms']:g} ms: "
            f"{_verdict(m.get('robot_e2e_p99_ms'))}")
    lines += [f"note: {note}" for note in report["notes"]]
    lines += [f"plot: {report['plot']}; JSON: {report['json']}; node logs: {report['node_logs']}"]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path:
    """Product CPU (x) against live accuracy (y), one point per level (and the robot-rate run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for name, figures in _columns(report):
        if not figures.get("reached"):
            continue
        x, y = 100 * figures["cpu_core"]["product"], figures["accuracy"]
        y = float("nan") if y is None else y
        marker = "s" if name.startswith("robot") else "o"
        axes.plot([x], [y], marker, markersize=8)
        axes.annotate(f"{name} (ratio {','.join(f'{r:g}' for r in figures['prune_ratios']) or '-'})", (x, y),
                      textcoords="offset points", xytext=(6, 4), fontsize=9)
    axes.axvline(100 * report["targets"]["full_product_cpu_core"], linestyle=":", color="grey")
    axes.set_xlabel("product CPU, % of one core (sensor_sim excluded)")
    axes.set_ylabel("live accuracy, % of scored samples")
    axes.set_title(f"sentryfuse bench power ({report['hold_s']:g} s per level)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
