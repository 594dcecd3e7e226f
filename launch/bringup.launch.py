"""Bring up SentryFuse: heartbeat_monitor, inference_node and (with use_sim:=true) sensor_sim.

    ros2 launch sentryfuse bringup.launch.py [namespace:=robot1] [use_sim:=true] \
        [params_file:=my.yaml] [weights:=my.safetensors] [gate:=my_gate.safetensors] [fault_schedule:=faults.yaml] [log_level:=debug]

The node list and arguments come from sentryfuse_ros.launch_plan, which `sentryfuse bringup`
(the pip-only launcher) reads too, so both start the same nodes from the same YAML.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

from sentryfuse_ros.launch_plan import LAUNCH_ARGUMENTS, NODES, PACKAGE


def _nodes(context):
    share = get_package_share_directory(PACKAGE)
    params_file = LaunchConfiguration("params_file").perform(context) or os.path.join(
        share, "config", "sentryfuse.yaml"
    )
    weights = LaunchConfiguration("weights").perform(context)
    gate = LaunchConfiguration("gate").perform(context)
    fault_schedule = LaunchConfiguration("fault_schedule").perform(context)
    actions = []
    for spec in NODES:
        parameters = [params_file]
        if spec.takes_weights and weights:
            parameters.append({"weights_path": weights})
        if spec.takes_weights and gate:
            parameters.append({"gate_path": gate})
        if spec.sim_only and fault_schedule:
            parameters.append({"fault_schedule": fault_schedule})
        actions.append(
            LifecycleNode(
                package=PACKAGE,
                executable=spec.executable,
                name=spec.name,
                namespace=LaunchConfiguration("namespace"),
                parameters=parameters,
                ros_arguments=["--log-level", LaunchConfiguration("log_level")],
                output="screen",
                condition=IfCondition(LaunchConfiguration("use_sim")) if spec.sim_only else None,
            )
        )
    return actions


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(argument.name, default_value=argument.default, description=argument.description)
        for argument in LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
