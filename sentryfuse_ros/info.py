"""`sentryfuse info`: what is installed and how ROS 2 is configured, for bug reports."""

from __future__ import annotations

import argparse
import importlib
import os
import platform


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="exit 1 if the messages or rclpy cannot be imported")


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import failure is the information we report
        return f"unavailable ({type(error).__name__}: {error})"
    return getattr(module, "__version__", "installed")


def run(args: argparse.Namespace) -> int:
    from sentryfuse_ros import __version__
    from sentryfuse_ros.fastdds_profile import ENV, profile_status

    profile, profile_broken = profile_status()
    rows = [
        ("sentryfuse", __version__),
        ("python", platform.python_version()),
        ("torch", _version("torch")),
        ("numpy", _version("numpy")),
        ("rclpy", _version("rclpy")),
        ("sentryfuse.msg", _version("sentryfuse.msg")),
        ("ROS_DOMAIN_ID", os.environ.get("ROS_DOMAIN_ID", "0 (default)")),
        ("ROS_AUTOMATIC_DISCOVERY_RANGE", os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "")),
        ("RMW_IMPLEMENTATION", os.environ.get("RMW_IMPLEMENTATION", "default")),
        (ENV, profile),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    broken = [name for name, value in rows[4:6] if value.startswith("unavailable")]
    return 1 if args.strict and (broken or profile_broken) else 0
