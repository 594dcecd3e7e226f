"""Parameter specs, the shipped parameter YAML, and the monitor's cross-parameter rules."""

import pytest
import yaml

from conftest import REPO_ROOT
from sentryfuse_ros.nodes import inference_params, monitor_params, sim_params
from sentryfuse_ros.nodes.lifecycle import COMMON_PARAMS
from sentryfuse_ros.nodes.params import ParamSpec, first_problem, values_from_params_file

SECTIONS = {"heartbeat_monitor": monitor_params.PARAMS, "inference_node": inference_params.PARAMS,
            "sensor_sim": sim_params.PARAMS}


SHIPPED = REPO_ROOT / "config" / "sentryfuse.yaml"


def _shipped(node):
    """Only what the file sets (no defaults), to catch typos and undeclared names."""
    return values_from_params_file(SHIPPED, node, ())


@pytest.mark.parametrize("node", SECTIONS)
def test_shipped_yaml_sets_only_declared_parameters_with_valid_values(node):
    specs = {spec.name: spec for spec in (*SECTIONS[node], *COMMON_PARAMS)}
    shipped = _shipped(node)
    assert shipped
    assert set(shipped) <= set(specs), f"undeclared: {sorted(set(shipped) - set(specs))}"
    assert first_problem(specs, shipped) is None
    for name, value in shipped.items():  # ROS rejects a value whose type differs from the default's
        assert type(value) is type(specs[name].default), name


def test_shipped_monitor_values_pass_the_cross_checks():
    assert monitor_params.cross_check(values_from_params_file(SHIPPED, "heartbeat_monitor", monitor_params.PARAMS)) is None


def test_params_file_sections_apply_like_rcl(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"heartbeat_hz": 5.0, "reliability": "reliable"}},
        "/**/heartbeat_monitor": {"ros__parameters": {"heartbeat_hz": 3.0, "power": {"hysteresis": 0.01}}},
        "/robot1/*": {"ros__parameters": {"min_rate_fraction": 0.25}},
        "heartbeat_monitor": {"ros__parameters": {"rate_window_s": 2.0}},  # plain key: root namespace only
        "other_node": {"ros__parameters": {"diagnostics_hz": 9.0}},
    }, sort_keys=False))
    root = values_from_params_file(path, "heartbeat_monitor", monitor_params.PARAMS)
    assert root["heartbeat_hz"] == 3.0 and root["reliability"] == "reliable" and root["power.hysteresis"] == 0.01
    assert root["rate_window_s"] == 2.0 and root["min_rate_fraction"] == 0.5 and root["diagnostics_hz"] == 1.0
    robot = values_from_params_file(path, "heartbeat_monitor", monitor_params.PARAMS, namespace="/robot1")
    assert robot["heartbeat_hz"] == 3.0 and robot["min_rate_fraction"] == 0.25 and robot["rate_window_s"] == 1.0


def test_timeout_shorter_than_a_period_is_rejected():
    values = {spec.name: spec.default for spec in monitor_params.PARAMS}
    values["imu.timeout_s"] = 0.009
    assert "imu.timeout_s" in monitor_params.cross_check(values)
    values["imu.timeout_s"], values["power.thresholds"] = 0.04, (0.2, 0.4, 0.1)
    assert "decreasing" in monitor_params.cross_check(values)


def test_param_spec_limits_and_descriptor():
    spec = ParamSpec("timeout_s", 0.1, "seconds", minimum=0.0, maximum=5.0, min_exclusive=True)
    assert spec.problem(0.0) and spec.problem(5.1) and spec.problem(float("nan"))
    assert spec.problem(5.0) is None
    assert spec.descriptor().additional_constraints == "> 0 and <= 5"
    assert not spec.descriptor().floating_point_range  # exclusive bounds cannot be a ROS range
    ranged = ParamSpec("n", 3, "count", minimum=1, maximum=10)
    assert ranged.descriptor().integer_range[0].to_value == 10
    listed = ParamSpec("budgets", (0.0, 0.5), "per level", minimum=0.0, maximum=0.99)
    assert "needs 2 values" in listed.problem((0.1,))
    assert "each" in listed.problem((0.1, 1.5))
    choice = ParamSpec("reliability", "best_effort", "qos", choices=("best_effort", "reliable"))
    assert "one of" in choice.problem("maybe")
