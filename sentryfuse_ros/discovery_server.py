"""`sentryfuse discovery-server`: Fast DDS's discovery server, for robot networks without multicast.

DDS finds peers by multicast; on a network that drops it (many Wi-Fi access points and VPNs) the
robot and its base station never hear each other. A discovery server is one well-known address
that every participant reports to instead: run it on one machine, and start every SentryFuse
process with ROS_DISCOVERY_SERVER=<that machine's address>:<port>. A full ROS 2 install has it as
`fastdds discovery --server-id 0`; the pip wheels ship the same binary (fast-discovery-server)
without putting their libraries on its search path, which this command does.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path

SERVER_MODE = "42"  # fast-discovery-server's "plain server" command (what `fastdds discovery` passes)


def server_binary() -> Path | None:
    candidate = Path(sys.prefix) / "bin" / "fast-discovery-server"
    return candidate if candidate.is_file() else None


def library_path() -> str:
    """The wheels' shared libraries: the prefix's lib/ and the fastdds wheel's bundled ones."""
    site = Path(sysconfig.get_paths()["purelib"])
    folders = [Path(sys.prefix) / "lib", site / "ros_fastdds.libs"]
    existing = [str(folder) for folder in folders if folder.is_dir()]
    inherited = os.environ.get("LD_LIBRARY_PATH")
    return os.pathsep.join(existing + ([inherited] if inherited else []))


def command(address: str, port: int) -> list[str]:
    binary = server_binary()
    if binary is None:
        raise FileNotFoundError(f"fast-discovery-server is not in {Path(sys.prefix) / 'bin'} (ros-fastdds wheel)")
    return [str(binary), SERVER_MODE, "-i", "0", "-l", address, "-p", str(port)]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="0.0.0.0", help="IPv4 address to listen on (default: every interface)")
    parser.add_argument("--port", type=int, default=11811, help="UDP port (default 11811)")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        print(f"sentryfuse discovery-server: --port must be 1..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        argv = command(args.address, args.port)
    except FileNotFoundError as error:
        print(f"sentryfuse discovery-server: {error}", file=sys.stderr)
        return 2
    print(f"discovery server on {args.address}:{args.port}; start every node with "
          f"ROS_DISCOVERY_SERVER=<this machine's address>:{args.port}", flush=True)
    os.execve(argv[0], argv, {**os.environ, "LD_LIBRARY_PATH": library_path()})
