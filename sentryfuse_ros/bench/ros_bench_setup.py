"""Files a `sentryfuse bench ros` run starts the system with: the shared parameter YAML with the
bench's few overrides, and the bench fault schedule repeated over the whole run."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml

from sentryfuse_ros.launch_plan import params_key
from sentryfuse_ros.nodes.fault_schedule import FaultSchedule


def bench_params(shared: dict, source: str) -> dict:
    """The shared parameters, except: sensor_sim replays `source` and waits to be activated by
    the bench (so its schedule starts once inference_node is up)."""
    params = copy.deepcopy(shared)
    sim = params.setdefault(params_key("sensor_sim"), {}).setdefault("ros__parameters", {})
    sim["source"] = source
    sim["autostart"] = False
    return params


def repeated_schedule(schedule: dict, every_s: float, until_s: float) -> dict:
    """`schedule`'s faults again every `every_s` seconds until `until_s`, so a long run keeps
    switching plans; the schedule must be over within one period."""
    end_s = FaultSchedule.from_dict(schedule).end_s
    if end_s > every_s:
        raise ValueError(f"the fault schedule lasts {end_s:g} s, longer than the repeat period {every_s:g} s")
    faults = schedule.get("faults") or []
    repeated = [
        {**fault, "at": float(fault["at"]) + cycle * every_s}
        for cycle in range(max(1, math.ceil(until_s / every_s)))
        for fault in faults
        if float(fault["at"]) + cycle * every_s < until_s
    ]
    return {"faults": repeated}


def write_run_files(folder: Path, shared_params: Path, schedule: Path, source: str,
                    every_s: float, until_s: float) -> tuple[Path, Path]:
    """(parameter file, fault schedule file) for this run, written into `folder`."""
    params_path, schedule_path = folder / "params.yaml", folder / "faults.yaml"
    shared = yaml.safe_load(shared_params.read_text()) or {}
    params_path.write_text(yaml.safe_dump(bench_params(shared, source), sort_keys=False))
    loaded = yaml.safe_load(schedule.read_text()) or {}
    schedule_path.write_text(yaml.safe_dump(repeated_schedule(loaded, every_s, until_s), sort_keys=False))
    return params_path, schedule_path
