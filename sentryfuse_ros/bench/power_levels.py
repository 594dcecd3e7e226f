"""`sentryfuse bench power`'s arithmetic, without ROS: which battery charge holds which power
level when, CPU from /proc tick deltas, the inference node's CPU breakdown from two diagnostics
snapshots, delivery counters, and energy from powercap counters."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from sentryfuse_ros.nodes.power_level import LEVEL_NAMES

SIM_PROCESS = "sensor_sim"
CPU_PREFIX = "cpu_ms "
COUNTERS = ("published", "taken", "lost")


@dataclass(frozen=True)
class LevelPlan:
    name: str  # "full", "normal", "low" or "critical"
    index: int  # ModalityState.POWER_* of that level
    start_s: float  # seconds after sensor_sim's activation when the battery moves to `charge`
    end_s: float
    charge: float  # battery fraction the sim reports meanwhile


def level_charge(index: int, thresholds: tuple[float, ...]) -> float:
    """A charge well inside level `index`'s band: 1.0 for full, else the middle of the band
    (thresholds are the lowest fractions of full, normal and low)."""
    if index == 0:
        return 1.0
    upper = thresholds[index - 1]
    lower = thresholds[index] if index < len(thresholds) else 0.0
    return round((upper + lower) / 2, 4)


def level_plans(levels: list[str], hold_s: float, thresholds: tuple[float, ...], hysteresis: float) -> list[LevelPlan]:
    """Each level in turn for hold_s seconds from the sim's activation. A climb to a better level
    needs its threshold plus the monitor's hysteresis, which the charge must clear."""
    if not levels:
        raise ValueError("no power level to hold")
    if hold_s <= 0:
        raise ValueError(f"hold time must be > 0, got {hold_s}")
    plans, previous = [], None
    for position, name in enumerate(levels):
        if name not in LEVEL_NAMES:
            raise ValueError(f"unknown power level {name!r}; expected some of {LEVEL_NAMES}")
        index = LEVEL_NAMES.index(name)
        charge = level_charge(index, thresholds)
        if previous is not None and index < previous and charge < thresholds[index] + hysteresis:
            raise ValueError(f"charge {charge:g} for {name} does not clear its threshold plus the hysteresis")
        plans.append(LevelPlan(name, index, position * hold_s, (position + 1) * hold_s, charge))
        previous = index
    return plans


def battery_schedule(plans: list[LevelPlan]) -> dict:
    """The fault schedule (nodes/fault_schedule.py) that moves the battery to each level's charge
    at its start; the first level's charge is the sim's battery.initial. No sensor fault."""
    return {"faults": [{"fault": "battery_jump", "at": plan.start_s, "to": plan.charge} for plan in plans[1:]]}


# --- CPU -------------------------------------------------------------------------------------------
def cpu_cores(first: dict[str, float], last: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used by each process between two CPU-seconds readings (/proc/<pid>/stat utime +
    stime), plus "product": every process but the simulator."""
    if seconds <= 0:
        raise ValueError(f"window must be > 0 s, got {seconds}")
    cores = {name: max(0.0, last[name] - first[name]) / seconds for name in first if name in last}
    cores["product"] = sum(value for name, value in cores.items() if name != SIM_PROCESS)
    return {name: round(value, 4) for name, value in cores.items()}


def inference_process(cmdlines: dict[str, str]) -> str | None:
    """Which process (Bringup.processes key) hosts inference_node: its own key, a process whose
    command line names it, the only product process, or a composed "perception" process."""
    if "inference_node" in cmdlines:
        return "inference_node"
    product = [name for name in cmdlines if name != SIM_PROCESS]
    named = [name for name in product if "inference_node" in cmdlines[name]]
    if len(named) == 1:
        return named[0]
    if len(product) == 1:
        return product[0]
    return "perception" if "perception" in product else None


def per_prediction_ms(cores: float | None, seconds: float, predictions: int) -> float | None:
    if cores is None or predictions <= 0:
        return None
    return round(cores * seconds * 1e3 / predictions, 3)


# --- the inference node's diagnostics --------------------------------------------------------------
def _number(values: dict[str, str], key: str) -> float | None:
    try:
        number = float(values[key])
    except (KeyError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def breakdown(first: dict[str, str], last: dict[str, str], seconds: float,
              inference_cores: float | None) -> dict[str, float]:
    """Milliseconds of CPU per second of each `cpu_ms <part>` counter between two snapshots taken
    `seconds` apart, and "rest": the inference process's CPU (cores) that no part accounts for.
    Empty when the snapshots carry no counters."""
    if seconds <= 0:
        return {}
    parts = {}
    for key in last:
        if key.startswith(CPU_PREFIX):
            before, after = _number(first, key), _number(last, key)
            if after is not None:
                parts[key[len(CPU_PREFIX):]] = max(0.0, after - (before or 0.0)) / seconds
    if not parts:
        return {}
    if inference_cores is not None:
        parts["rest"] = inference_cores * 1e3 - sum(parts.values())
    return {name: round(value, 3) for name, value in parts.items()}


def counter_deltas(first: dict[str, str], last: dict[str, str], sensors: tuple[str, ...],
                   key_format: str = "{counter} {sensor}") -> dict[str, dict[str, int]]:
    """published / taken / lost per sensor between two snapshots; sensors without counters are left out."""
    deltas = {}
    for sensor in sensors:
        entry = {}
        for counter in COUNTERS:
            key = key_format.format(counter=counter, sensor=sensor)
            after, before = _number(last, key), _number(first, key)
            if after is not None:
                entry[counter] = int(after - (before or 0.0))
        if entry:
            deltas[sensor] = entry
    return deltas


def received_fraction(counters: dict[str, int] | None) -> float | None:
    """(published - lost) / published of one sensor's counter deltas, None without a published count."""
    if not counters or not counters.get("published"):
        return None
    published = counters["published"]
    return round(max(0, published - counters.get("lost", 0)) / published, 4)


# --- energy ----------------------------------------------------------------------------------------
POWERCAP = Path("/sys/class/powercap")
_TOP_ZONE = re.compile(r"^[a-z-]+:\d+$")  # intel-rapl:0, not its sub-zones intel-rapl:0:0


def read_energy(root: Path = POWERCAP) -> dict[str, tuple[int, int]] | None:
    """zone -> (energy_uj, max_energy_range_uj) of each readable top-level powercap zone (the
    MMIO copy of a package zone left out), None when there is none."""
    if not root.is_dir():
        return None
    zones = {}
    for zone in sorted(root.iterdir()):
        if not _TOP_ZONE.match(zone.name) or "mmio" in zone.name:
            continue
        try:
            energy = int((zone / "energy_uj").read_text())
            wrap = int((zone / "max_energy_range_uj").read_text()) if (zone / "max_energy_range_uj").exists() else 0
        except (OSError, ValueError):
            continue
        zones[zone.name] = (energy, wrap)
    return zones or None


def joules(first: dict[str, tuple[int, int]] | None, last: dict[str, tuple[int, int]] | None) -> float | None:
    """Energy between two read_energy readings, over the zones read both times (a counter that
    wrapped once is unwrapped with its range)."""
    if not first or not last:
        return None
    total = 0
    for zone, (before, wrap) in first.items():
        if zone not in last:
            continue
        delta = last[zone][0] - before
        total += delta + wrap if delta < 0 and wrap else max(0, delta)
    return round(total / 1e6, 3)
