#!/usr/bin/env bash
# `colcon build` of this package in a scratch workspace whose ROS 2 comes from the PyPI wheels
# in the project venv: what README's "With a full ROS 2 installation" steps do, without a ROS
# install. colcon goes into a venv of its own (not the project's), the sources are copied into
# the workspace (tracked and untracked files, as git lists them), and the installed messages,
# nodes and launch files are checked from the sourced workspace. Takes about a minute.
#
#   scripts/colcon_on_wheels.sh [WORKSPACE]     (default: a new folder under /tmp)
#
# Environment: VENV (the project venv, default .venv), COLCON_VENV (default /tmp/colcon-venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(cd "${VENV:-$root/.venv}" && pwd)"
colcon_venv="${COLCON_VENV:-/tmp/colcon-venv}"
ws="${1:-$(mktemp -d /tmp/sentryfuse-colcon-XXXXXX)}"

if [ ! -x "$colcon_venv/bin/colcon" ]; then
  python3 -m venv "$colcon_venv"
  "$colcon_venv/bin/python" -m pip install -q colcon-core colcon-cmake colcon-ros
fi

mkdir -p "$ws/src/sentryfuse"
(cd "$root" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -xf - -C "$ws/src/sentryfuse"

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
cd "$ws"
"$colcon_venv/bin/colcon" build --packages-select sentryfuse \
  --cmake-args "-DPython3_EXECUTABLE=$venv/bin/python" -DBUILD_TESTING=OFF

# The workspace overlays the venv: messages, the Python package and the share folder come from it.
set +u
# shellcheck disable=SC1091
. "$ws/install/setup.sh"
set -u
"$venv/bin/python" - "$ws" <<'PY'
import sys
from pathlib import Path

import sentryfuse.msg
import sentryfuse_ros
from ament_index_python.packages import get_package_prefix, get_package_share_directory

install = Path(sys.argv[1]) / "install" / "sentryfuse"
for module in (sentryfuse.msg, sentryfuse_ros):
    assert Path(module.__file__).is_relative_to(install), f"{module.__name__} from {module.__file__}"
share = Path(get_package_share_directory("sentryfuse"))
assert (share / "launch" / "bringup.launch.py").is_file() and (share / "config" / "sentryfuse.yaml").is_file()
nodes = sorted(p.name for p in (Path(get_package_prefix("sentryfuse")) / "lib" / "sentryfuse").iterdir())
print(f"colcon build on the wheels: OK ({install}); nodes {', '.join(nodes)}")
PY
