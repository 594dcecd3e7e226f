"""Bring up SentryFuse: heartbeat_monitor, inference_node and (with use_sim:=true) sensor_sim;
with role:=base_station, on another machine, the base station that answers offload requests.

heartbeat_monitor and inference_node run in one process (`perception`, sharing each sensor
subscription) unless composed:=false. Every process gets the shipped Fast DDS profile for large
frames (config/fastdds_large_frames.xml) unless FASTDDS_DEFAULT_PROFILES_FILE is already set.

    ros2 launch sentryfuse bringup.launch.py [role:=base_station] [namespace:=robot1] [use_sim:=true] [composed:=false] \
        [params_file:=my.yaml] [weights:=my.safetensors] [gate:=my_gate.safetensors] [fault_schedule:=faults.yaml] [log_level:=debug]

The node list and arguments come from sentryfuse_ros.launch_plan, which `sentryfuse bringup`
(the pip-only launcher) reads too, so both start the same nodes from the same YAML.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from sentryfuse_ros.bringup import TRUE_WORDS
from sentryfuse_ros.launch_plan import LAUNCH_ARGUMENTS, PACKAGE, processes


def _nodes(context):
    share = get_package_share_directory(PACKAGE)
    params_file = LaunchConfiguration("params_file").perform(context) or os.path.join(
        share, "config", "sentryfuse.yaml"
    )
    weights = LaunchConfiguration("weights").perform(context)
    gate = LaunchConfiguration("gate").perform(context)
    fault_schedule = LaunchConfiguration("fault_schedule").perform(context)
    composed = LaunchConfiguration("composed").perform(context).lower() in TRUE_WORDS
    use_sim = LaunchConfiguration("use_sim").perform(context).lower() in TRUE_WORDS
    role = LaunchConfiguration("role").perform(context)
    env = {}
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = os.path.join(share, "config", "fastdds_large_frames.xml")
    actions = []
    for spec in processes(composed, use_sim, role):
        parameters = [params_file]
        if spec.takes_weights and weights:
            parameters.append({"weights_path": weights})
        if spec.takes_weights and gate:
            parameters.append({"gate_path": gate})
        if spec.sim_only and fault_schedule:
            parameters.append({"fault_schedule": fault_schedule})
        common = dict(
            package=PACKAGE,
            executable=spec.executable,
            namespace=LaunchConfiguration("namespace"),
            parameters=parameters,
            ros_arguments=["--log-level", LaunchConfiguration("log_level")],
            additional_env=env,
            output="screen",
        )
        # A composed process hosts several lifecycle nodes under their own names.
        actions.append(Node(**common) if spec.hosts else LifecycleNode(name=spec.name, **common))
    return actions


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(argument.name, default_value=argument.default, description=argument.description)
        for argument in LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
