"""The full ament_cmake build (what `colcon build` runs) configures against the ROS 2 PyPI wheels,
whose exported Python include directories name the machine the wheels were built on.
scripts/colcon_on_wheels.sh runs the whole colcon build the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

VENV = Path(sys.prefix)


@pytest.mark.slow  # seconds
@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.skipif(not (VENV / "share" / "ament_cmake").is_dir(), reason="needs the ROS 2 wheels' CMake files")
def test_full_package_configures_against_the_wheels(tmp_path):
    # The source tree outside the venv, as in a colcon workspace (CMake refuses exported include
    # directories inside the source tree unless they are inside the install prefix).
    source = tmp_path / "src" / "sentryfuse"
    source.mkdir(parents=True)
    for name in ("CMakeLists.txt", "package.xml"):
        shutil.copy(REPO_ROOT / name, source / name)
    for name in ("cmake", "msg"):
        shutil.copytree(REPO_ROOT / name, source / name)
    for name in ("sentryfuse_ros", "scripts", "launch", "config"):
        (source / name).symlink_to(REPO_ROOT / name)
    build = tmp_path / "build"
    env = {**os.environ, "AMENT_PREFIX_PATH": str(VENV), "CMAKE_PREFIX_PATH": str(VENV),
           "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={tmp_path / 'install'}",
         f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pointed the Python includes" in done.stdout  # the wheels' directories needed it
    assert (build / "Makefile").is_file()
