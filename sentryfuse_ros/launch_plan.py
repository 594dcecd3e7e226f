"""What bringup starts: the one description shared by `launch/bringup.launch.py` (full ROS)
and `sentryfuse bringup` (pip-only), so both start the same nodes with the same arguments
from the same parameter YAML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE = "sentryfuse"


@dataclass(frozen=True)
class NodeSpec:
    name: str  # node name, also the key of its section in the parameter YAML
    executable: str  # installed into lib/sentryfuse by CMakeLists.txt, for launch_ros
    module: str  # `python -m` entry point, for the pip-only launcher
    sim_only: bool = False  # started only when use_sim is true
    takes_weights: bool = False  # receives the weights and gate launch arguments (weights_path, gate_path)
    hosts: tuple[str, ...] = ()  # a composed process: the nodes it runs (each reads its own YAML section)


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("heartbeat_monitor", "heartbeat_monitor", "sentryfuse_ros.nodes.heartbeat_monitor"),
    NodeSpec("inference_node", "inference_node", "sentryfuse_ros.nodes.inference_node", takes_weights=True),
    NodeSpec("sensor_sim", "sensor_sim", "sentryfuse_ros.nodes.sensor_sim", sim_only=True),
)

# heartbeat_monitor and inference_node in one process sharing each sensor subscription
# (nodes/perception.py): each message is received and taken once for both.
PERCEPTION = NodeSpec(
    "perception", "perception", "sentryfuse_ros.nodes.perception", takes_weights=True,
    hosts=("heartbeat_monitor", "inference_node"),
)

# The base station's model server: the only node of role base_station, on its own machine.
BASE_STATION = NodeSpec("base_station", "base_station", "sentryfuse_ros.nodes.base_station", takes_weights=True)
ROLES = ("robot", "base_station")


def processes(composed: bool, use_sim: bool, role: str = "robot") -> list[NodeSpec]:
    """What to start: the robot's nodes (PERCEPTION in place of the nodes it hosts when composed),
    or the base station."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "base_station":
        return [BASE_STATION]
    specs = [spec for spec in NODES if use_sim or not spec.sim_only]
    if not composed:
        return specs
    return [PERCEPTION, *(spec for spec in specs if spec.name not in PERCEPTION.hosts)]


def fastdds_profile() -> Path:
    """The Fast DDS profile that lets camera-sized best-effort messages through shared memory."""
    return source_config_dir() / "fastdds_large_frames.xml"


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str


# An empty params_file / weights / gate / fault_schedule means "the package's own default".
LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("namespace", "", "ROS namespace for every SentryFuse node"),
    LaunchArgument("role", "robot", "robot: the robot's nodes; base_station: the model server that answers a robot's "
                   "offload requests (on the base station's machine, same ROS_DOMAIN_ID)"),
    LaunchArgument("params_file", "", "parameter YAML (default: the package's config/sentryfuse.yaml)"),
    LaunchArgument("use_sim", "false", "also start sensor_sim, which replays the benchmark's test split"),
    LaunchArgument("composed", "true", "run heartbeat_monitor and inference_node in one process that takes each sensor "
                   "message once for both (false: a process each)"),
    LaunchArgument("weights", "", "SentryAttend weights for inference_node (default: the shipped ones)"),
    LaunchArgument("gate", "", "SentryGate weights trained for those SentryAttend weights (default: the shipped gate)"),
    LaunchArgument("fault_schedule", "", "fault schedule YAML for sensor_sim (default: none)"),
    LaunchArgument("log_level", "info", "log level of every node: debug, info, warn, error or fatal"),
)


def params_key(node_name: str) -> str:
    """The parameter-YAML key of a node: matches it in any namespace."""
    return f"/**/{node_name}"


def source_config_dir() -> Path:
    """config/ of this checkout (the pip-only environment installs the package editable)."""
    return Path(__file__).resolve().parents[1] / "config"
