"""The pip-only launcher and the launch file share one plan and one parameter YAML."""

import importlib.util
import subprocess
import sys

import pytest
import yaml

from conftest import REPO_ROOT
from sentryfuse_ros.bringup import BringupConfig, BringupError, parse_launch_arguments
from sentryfuse_ros.launch_plan import BASE_STATION, LAUNCH_ARGUMENTS, NODES, params_key, source_config_dir


def _config(*words, remaps=()):
    return BringupConfig.from_launch_arguments(parse_launch_arguments(list(words)), list(remaps))


def test_default_bringup_starts_monitor_and_inference_but_not_sim():
    assert [spec.name for spec in _config().nodes()] == ["heartbeat_monitor", "inference_node"]
    assert [spec.name for spec in _config("use_sim:=true").nodes()] == [spec.name for spec in NODES]


def test_command_carries_namespace_params_remaps_and_log_level(tmp_path):
    weights, gate = tmp_path / "w.safetensors", tmp_path / "g.safetensors"
    weights.write_bytes(b"x")
    gate.write_bytes(b"x")
    config = _config(
        "namespace:=robot1", "log_level:=DEBUG", f"weights:={weights}", f"gate:={gate}", remaps=["camera/image:=front/image"]
    )
    inference = next(spec for spec in NODES if spec.name == "inference_node")
    command = config.command(inference)
    assert command[:3] == [sys.executable, "-m", inference.module]
    ros_args = " ".join(command[3:])
    assert "-r __node:=inference_node" in ros_args
    assert "-r __ns:=/robot1" in ros_args
    assert f"--params-file {source_config_dir() / 'sentryfuse.yaml'}" in ros_args
    assert f"-p weights_path:={weights}" in ros_args
    assert f"-p gate_path:={gate}" in ros_args
    assert "-r camera/image:=front/image" in ros_args
    assert ros_args.endswith("--log-level debug")
    monitor = next(spec for spec in NODES if spec.name == "heartbeat_monitor")
    assert "weights_path" not in " ".join(config.command(monitor))


@pytest.mark.parametrize(
    "words, message",
    [
        (["use_sim:=maybe"], "use_sim must be true or false"),
        (["log_level:=loud"], "log_level 'loud'"),
        (["no_such:=1"], "unknown launch argument"),
        (["params_file:=/nonexistent.yaml"], "params_file not found"),
        (["weights:=/nonexistent.safetensors"], "weights file not found"),
        (["gate:=/nonexistent.safetensors"], "gate file not found"),
        (["use_sim"], "not of the form name:=value"),
    ],
)
def test_bad_launch_arguments_are_rejected_with_a_reason(words, message):
    with pytest.raises(BringupError, match=message):
        _config(*words)


def test_bad_remap_and_non_ros_yaml_are_rejected(tmp_path):
    with pytest.raises(BringupError, match="old:=new"):
        _config(remaps=["camera"])
    not_params = tmp_path / "plain.yaml"
    not_params.write_text(yaml.safe_dump({"a": 1}))
    with pytest.raises(BringupError, match="not a ROS parameter file"):
        _config(f"params_file:={not_params}")


def test_cli_reports_errors_with_status_2():
    result = subprocess.run(
        [sys.executable, "-m", "sentryfuse_ros.cli", "bringup", "use_sim:=perhaps"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "use_sim must be true or false" in result.stderr


def test_shipped_yaml_has_a_namespace_proof_section_for_every_node():
    params = yaml.safe_load((source_config_dir() / "sentryfuse.yaml").read_text())
    assert set(params) == {params_key(spec.name) for spec in (*NODES, BASE_STATION)}


def test_role_base_station_starts_only_the_base_station():
    assert [spec.name for spec in _config("role:=base_station").processes()] == ["base_station"]
    assert [spec.name for spec in _config("role:=base_station", "use_sim:=true").nodes()] == ["base_station"]
    with pytest.raises(BringupError, match="role 'server' is not one of"):
        _config("role:=server")


def test_yaml_sections_apply_inside_a_namespace(processes, tmp_path):
    """The node reads its section although bringup runs it in a namespace."""
    script = tmp_path / "read_param.py"
    script.write_text(
        "import sys, rclpy\n"
        "rclpy.init(args=sys.argv)\n"
        "node = rclpy.create_node('inference_node')\n"
        "node.declare_parameter('policy.full.rate_hz', 0.0)\n"
        "print(node.get_fully_qualified_name(), node.get_parameter('policy.full.rate_hz').value)\n"
    )
    params = source_config_dir() / "sentryfuse.yaml"
    expected = yaml.safe_load(params.read_text())[params_key("inference_node")]["ros__parameters"]["policy"]["full"]["rate_hz"]
    output = subprocess.run(
        [sys.executable, str(script), "--ros-args", "-r", "__ns:=/robot1", "--params-file", str(params)],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()
    assert output == ["/robot1/inference_node", str(float(expected))]


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not installable from PyPI")
def test_launch_file_declares_the_documented_arguments():
    from launch.actions import DeclareLaunchArgument
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    source = PythonLaunchDescriptionSource(str(REPO_ROOT / "launch" / "bringup.launch.py"))
    description = source.get_launch_description(None)
    declared = {entity.name: entity for entity in description.entities if isinstance(entity, DeclareLaunchArgument)}
    assert set(declared) == {argument.name for argument in LAUNCH_ARGUMENTS}
    for argument in LAUNCH_ARGUMENTS:
        assert declared[argument.name].description == argument.description


def test_monitor_and_inference_run_composed_by_default_with_the_large_frame_profile(monkeypatch):
    from sentryfuse_ros.bringup import node_environment
    from sentryfuse_ros.launch_plan import PERCEPTION, fastdds_profile

    assert [spec.name for spec in _config("use_sim:=true").processes()] == ["perception", "sensor_sim"]
    assert [spec.name for spec in _config("composed:=false").processes()] == ["heartbeat_monitor", "inference_node"]
    command = " ".join(_config().command(PERCEPTION))
    assert "__node:=" not in command, "a composed process's nodes keep their own names"
    assert "sentryfuse_ros.nodes.perception" in command
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    assert node_environment()["FASTDDS_DEFAULT_PROFILES_FILE"] == str(fastdds_profile())
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/robot/own.xml")
    assert node_environment()["FASTDDS_DEFAULT_PROFILES_FILE"] == "/robot/own.xml", "the user's profile wins"
    with pytest.raises(BringupError, match="composed must be true or false"):
        _config("composed:=sometimes")


def test_shipped_fastdds_profile_gives_shared_memory_room_for_vga_frames(monkeypatch):
    from sentryfuse_ros.fastdds_profile import VGA_BGR8_BYTES, profile_status, shm_segment_bytes
    from sentryfuse_ros.launch_plan import fastdds_profile

    assert shm_segment_bytes(fastdds_profile()) >= 4 * VGA_BGR8_BYTES
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(fastdds_profile()))
    assert profile_status()[1] is False
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/no/such/profile.xml")
    text, broken = profile_status()
    assert broken and "not a readable XML file" in text
