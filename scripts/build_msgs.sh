#!/usr/bin/env bash
# Generate and build the sentryfuse messages against the ROS 2 PyPI wheels, and
# install them into the venv prefix, where the wheels' loader finds them without any
# `source` step. A colcon build in a ROS workspace uses CMakeLists.txt directly instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
build="$root/build/msgs"
mkdir -p "$build"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
cmake -S "$root" -B "$build" -DSENTRYFUSE_MSGS_ONLY=ON -DCMAKE_INSTALL_PREFIX="$venv" \
  -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF > "$build/configure.log" 2>&1 \
  || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" > "$build/build.log" 2>&1 || { tail -50 "$build/build.log" >&2; exit 1; }
cmake --install "$build" > "$build/install.log" 2>&1 || { cat "$build/install.log" >&2; exit 1; }
"$venv/bin/python" -c 'from sentryfuse.msg import AudioChunk, BaseStationStatus, ModalityState, OffloadRequest, OffloadTensor, Prediction'
