"""Node parameters declared in one place: a tuple of ParamSpec per node.

Each spec carries its default, description and limits; `declare_parameters` turns them into
ROS parameters with descriptors (visible in `ros2 param describe`), and `spec_problem` is the
check the node's on-set-parameters callback runs, so a bad value is rejected with a reason
instead of reaching the node.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: bool | int | float | str | tuple
    description: str
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False  # minimum itself is not allowed (e.g. a period > 0)
    choices: tuple[str, ...] = ()
    # Read once at activation (topics, QoS); changing them needs deactivate + activate.
    read_only: bool = False

    def constraints(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.min_exclusive else '>='} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum:g}")
        if self.choices:
            parts.append(f"one of {', '.join(self.choices)}")
        if not parts:
            return ""
        return ("each " if isinstance(self.default, tuple) else "") + " and ".join(parts)

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(
            name=self.name,
            description=self.description,
            additional_constraints=self.constraints(),
            read_only=self.read_only,
        )
        # ROS ranges are inclusive, so only inclusive two-sided ranges are mirrored into them.
        if self.minimum is None or self.maximum is None or self.min_exclusive:
            return descriptor
        if isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(self.minimum), to_value=int(self.maximum), step=0)]
        elif isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.minimum), to_value=float(self.maximum), step=0.0)
            ]
        return descriptor

    def problem(self, value) -> str | None:
        """Why `value` is not acceptable for this parameter, or None."""
        values = value if isinstance(self.default, tuple) else (value,)
        if isinstance(self.default, tuple) and len(values) != len(self.default):
            return f"{self.name} needs {len(self.default)} values, got {len(values)}"
        for item in values:
            if self.choices and item not in self.choices:
                return f"{self.name} must be one of {list(self.choices)}, got {item!r}"
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                if not math.isfinite(item):
                    return f"{self.name} must be finite, got {item}"
                too_low = self.minimum is not None and (
                    item <= self.minimum if self.min_exclusive else item < self.minimum
                )
                too_high = self.maximum is not None and item > self.maximum
                if too_low or too_high:
                    return f"{self.name} must be {self.constraints()}, got {item}"
        return None


def declare_parameters(node, specs: Iterable[ParamSpec]) -> None:
    for spec in specs:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        node.declare_parameter(spec.name, default, spec.descriptor())


def first_problem(specs: dict[str, ParamSpec], values: dict) -> str | None:
    """The first per-parameter problem among `values` (name -> value), or None."""
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None:
            problem = spec.problem(value)
            if problem:
                return problem
    return None


def _flatten(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", tuple(value) if isinstance(value, list) else value


def _key_matches(key: str, fully_qualified_name: str) -> bool:
    """Whether a parameter-file section key (`/**`, `/**/name`, `/ns/*`, `name`) selects the node,
    with rcl's wildcards: `*` is one name token, `**` any number of them."""
    tokens = [t for t in key.strip("/").split("/") if t]
    pattern = "".join("(/[^/]+)*" if t == "**" else "/[^/]+" if t == "*" else "/" + re.escape(t) for t in tokens)
    return re.fullmatch(pattern or "/", fully_qualified_name) is not None


def values_from_params_file(path: str | Path, node_name: str, specs: Iterable[ParamSpec], namespace: str = "/") -> dict:
    """What `specs` are set to for node `node_name` in `namespace` by a ROS parameter file: every
    section whose key selects the node applies, in file order; defaults where the file is silent."""
    values = {spec.name: spec.default for spec in specs}
    fully_qualified_name = f"{namespace.rstrip('/')}/{node_name}"
    content = yaml.safe_load(Path(path).read_text()) or {}
    for key, section in content.items():
        if _key_matches(str(key), fully_qualified_name):
            values.update(_flatten((section or {}).get("ros__parameters") or {}))
    return values
