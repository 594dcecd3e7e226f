"""`sentryfuse demo`: the whole system on a bare machine.

Starts heartbeat_monitor, inference_node and sensor_sim (replaying the benchmark's test split
under a scripted fault schedule: camera unplugged, IMU flapping, malformed messages, battery
draining) exactly as `sentryfuse bringup use_sim:=true` does, and shows the live view of
`sentryfuse monitor`. The nodes' own logs go to a file so the view stays readable.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sentryfuse_ros.bringup import Bringup, BringupConfig, BringupError
from sentryfuse_ros.launch_plan import source_config_dir
from sentryfuse_ros.live_view import LiveView


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fault-schedule", type=Path, default=source_config_dir() / "faults" / "demo.yaml")
    parser.add_argument("--duration", type=float, default=110.0, help="seconds to run (the demo schedule lasts ~105 s)")
    parser.add_argument("--log", type=Path, default=None, help="file for the nodes' logs (default: a temporary file)")


def run(args: argparse.Namespace) -> int:
    from sentryfuse_ros.data.dataset import load_split

    try:
        load_split("test")
    except Exception as error:  # the dataset explains what is missing and how to build it
        print(f"sentryfuse demo: the simulator needs the benchmark's test split: {error}")
        return 2
    try:
        config = BringupConfig.from_launch_arguments(
            {"use_sim": "true", "fault_schedule": str(args.fault_schedule)}, remaps=[]
        )
    except BringupError as error:
        print(f"sentryfuse demo: {error}")
        return 2
    log_path = args.log or Path(tempfile.mkdtemp(prefix="sentryfuse-demo-")) / "nodes.log"
    print(f"starting {', '.join(spec.name for spec in config.nodes())}; node logs: {log_path}")
    print(f"fault schedule: {args.fault_schedule}")
    with open(log_path, "w") as log:
        bringup = Bringup(config, output=log)
        bringup.start()
        try:
            LiveView().run(args.duration, every_s=1.0)
        finally:
            exited = bringup.exited()
            bringup.stop()
    if exited:
        print(f"nodes exited early: {exited}; see {log_path}")
        return 1
    return 0
