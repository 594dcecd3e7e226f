"""The package imports, its manifest validates, and the `sentryfuse` command works."""

import subprocess
import sys

import pytest
from catkin_pkg.package import parse_package

from conftest import REPO_ROOT


def test_package_imports_without_ros_or_torch():
    # The top-level package and CLI must not drag in rclpy or torch (fast `--help`).
    code = "import sys, sentryfuse_ros, sentryfuse_ros.cli; print('rclpy' in sys.modules, 'torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


@pytest.mark.slow  # seconds
def test_model_and_pruning_never_import_rclpy_even_indirectly():
    # Every module of model/ and pruning/ imported in a fresh interpreter: neither they nor
    # anything they import may load rclpy (they run offline, without ROS).
    modules = sorted(
        ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for folder in ("model", "pruning")
        for path in (REPO_ROOT / "sentryfuse_ros" / folder).rglob("*.py")
    )
    code = (f"import importlib, sys\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in ('rclpy', 'rcl_interfaces')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert len(modules) > 20 and done.stdout.split() == ["[]"]


def test_package_xml_is_valid_format_3():
    package = parse_package(str(REPO_ROOT / "package.xml"))
    package.validate()  # raises InvalidPackage on any problem
    assert package.name == "sentryfuse"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [group.name for group in package.member_of_groups]


def test_cli_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "info" in result.stdout


def test_cli_rejects_unknown_command_with_usage():
    result = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "no-such-command"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.slow  # seconds
def test_info_finds_messages_and_rclpy():
    result = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "info", "--strict"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOCALHOST" in result.stdout


def test_messages_import():
    from sentryfuse.msg import AudioChunk, ModalityState, Prediction  # noqa: F401
