"""The `sentryfuse` command.

Subcommands live in their own modules and are imported only when chosen, so
`sentryfuse --help` stays instant and never imports torch or rclpy. A command module
provides `configure_parser(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). A nested dict is a command group, e.g. `sentryfuse bench model`.
COMMANDS: dict[str, tuple[str, str] | dict] = {
    "info": ("sentryfuse_ros.info", "Show versions, the ROS environment and whether the messages load"),
    "data": ("sentryfuse_ros.data.cli", "Build or inspect the tri-modal digits benchmark; cut a dataset from bags"),
    "bringup": ("sentryfuse_ros.bringup", "Start the SentryFuse nodes from the launch plan and parameter YAML (no ros2 launch needed)"),
    "discovery-server": ("sentryfuse_ros.discovery_server", "Fast DDS discovery server, for robot networks without multicast (nodes: ROS_DISCOVERY_SERVER=host:port)"),
    "monitor": ("sentryfuse_ros.live_view", "Live view of a running system: predictions, live sensors, power, latency, accuracy"),
    "record": ("sentryfuse_ros.bags.record", "Record the sensor, state, prediction and label topics into a rosbag2 bag (MCAP)"),
    "replay": ("sentryfuse_ros.bags.replay", "Play a rosbag2 bag (mcap or sqlite3) with its recorded timing, so the nodes run without sensors"),
    "demo": ("sentryfuse_ros.demo", "Run the whole system with the simulator and a fault schedule, with the live view"),
    "policy": {
        "fit": ("sentryfuse_ros.bench.policy_fit", "Choose each power level's policy by measurement: live CPU and offline accuracy of candidate policies, Pareto front, the parameter block"),
    },
    "gate": {
        "train": ("sentryfuse_ros.pruning.gate_cli", "Fit SentryGate to a trained backbone (per-subset iterative importance targets)"),
        "decide": ("sentryfuse_ros.evaluation.ship_decision", "Whether a backbone and its gate should replace the shipped pair: validation accuracy of the gate's plans at every power level"),
    },
    "eval": ("sentryfuse_ros.evaluation.cli", "Compare SentryGate with the pruning baselines over modality subsets, ratios and seeds (resumable)"),
    "train": ("sentryfuse_ros.training.cli", "Train a SentryAttend variant (modality-dropout curriculum) on the digits benchmark or a recorded dataset"),
    "bench": {
        "prune": ("sentryfuse_ros.bench.prune_bench", "Params, GFLOPs, memory, latency and FLOP/s of dense, SentryAttend and SentryGate-pruned models"),
        "monitor": ("sentryfuse_ros.bench.monitor_bench", "Dropout detection latency and CPU of heartbeat_monitor"),
        "model": ("sentryfuse_ros.bench.model_bench", "Accuracy per modality subset, FLOPs and latency of the shipped SentryAttend checkpoints"),
        "ros": ("sentryfuse_ros.bench.ros_bench", "End-to-end latency, plan switch time, CPU per node and live vs offline accuracy of the running system"),
        "roundtrip": ("sentryfuse_ros.bench.roundtrip", "Simulator -> labelled bag -> dataset -> model -> live predictions while the bag replays: record loss and CPU, replay timing, live vs offline accuracy"),
        "offload": ("sentryfuse_ros.bench.offload_bench", "Robot CPU, first-prediction latency and live accuracy at low power with a base station: offload off and on, 0/20/100 ms links and a link drop"),
        "power": ("sentryfuse_ros.bench.power_bench", "CPU per process, CPU per prediction, live accuracy and latency of the running system at each power level (--robot-rates: also a robot's streams)"),
    },
}


def _build_parser(commands: dict, prog: str, argv: list[str]) -> tuple[argparse.ArgumentParser, list]:
    """Parser for `commands`, configuring only the subcommand named in argv (lazy import)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0] if prog == "sentryfuse" else None)
    if prog == "sentryfuse":
        from sentryfuse_ros import __version__

        parser.add_argument("--version", action="version", version=f"sentryfuse {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = argv[0] if argv else None
    for name, entry in commands.items():
        if isinstance(entry, dict):
            subparsers.add_parser(name, help=f"{name} subcommands: {', '.join(entry)}", add_help=False)
            continue
        module_name, help_text = entry
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.configure_parser(sub)
            sub.set_defaults(_run=module.run)
    return parser, subparsers


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands, prog = COMMANDS, "sentryfuse"
    # Descend into command groups (`bench model ...`) before building the parser.
    while argv and isinstance(commands.get(argv[0]), dict):
        prog, commands = f"{prog} {argv[0]}", commands[argv[0]]
        argv = argv[1:]
    parser, _ = _build_parser(commands, prog, argv)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
