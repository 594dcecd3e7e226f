"""The power policy's rules (nodes/power_policy.py) and the policy fit's choice (bench/policy_choice.py)."""

from __future__ import annotations

import pytest

from sentryfuse_ros.bench.policy_choice import (REFERENCE, Behaviour, Candidate, choose, config_block,
                                                modality_values, pareto_front)
from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS
from sentryfuse_ros.nodes import inference_params
from sentryfuse_ros.nodes.params import first_problem
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
from sentryfuse_ros.nodes.power_policy import LevelPolicy, PowerPolicy, parse_modalities, policy_problem

FULL, NORMAL, LOW, CRITICAL = range(4)


def _values(**changes):
    values = {spec.name: spec.default for spec in inference_params.PARAMS}
    values.update({name.replace("__", "."): value for name, value in changes.items()})
    return values


def test_shipped_defaults_make_a_policy_with_one_entry_per_level():
    policy = PowerPolicy.from_values(_values())
    assert len(policy.levels) == len(LEVEL_NAMES)
    assert policy.at(FULL).trigger == "rate" and policy.at(FULL).shed == ()
    assert policy.planned_ratios() == sorted({level.prune_ratio for level in policy.levels})


def test_a_fixed_prune_ratio_overrides_every_level():
    policy = PowerPolicy.from_values(_values(prune_ratio=0.3))
    assert {level.prune_ratio for level in policy.levels} == {0.3}
    assert policy.planned_ratios() == [0.3]


def test_shedding_unsubscribes_the_listed_modalities_but_never_every_live_one():
    values = _values(**{"policy.critical.shed": "imu,audio", "policy.low.shed": "imu"})
    policy = PowerPolicy.from_values(values)
    assert policy.consumed(FULL, MODALITIES) == MODALITIES
    assert policy.consumed(LOW, MODALITIES) == ("camera", "audio")
    assert policy.consumed(CRITICAL, MODALITIES) == ("camera",)
    # The camera is dead: every live modality is shed, so the one worth most (value_order) is kept.
    assert policy.consumed(CRITICAL, ("imu", "audio")) == ("camera", "audio")
    assert policy.consumed(CRITICAL, ("imu",)) == ("camera", "imu")
    # Nothing alive at all: nothing extra to keep.
    assert policy.consumed(CRITICAL, ()) == ("camera",)


def test_value_order_decides_which_live_modality_is_kept():
    policy = PowerPolicy.from_values(_values(**{"policy.critical.shed": "imu,audio",
                                                "policy.value_order": ("imu", "camera", "audio")}))
    assert policy.consumed(CRITICAL, ("imu", "audio")) == ("camera", "imu")


@pytest.mark.parametrize("name, value, reason", [
    ("policy.low.shed", "lidar", "unknown modality 'lidar'"),
    ("policy.low.shed", "imu,imu", "names a modality twice"),
    ("policy.low.shed", "camera,imu,audio", "sheds every modality"),
    ("policy.value_order", ("camera", "imu"), "must name each of"),
    ("policy.value_order", ("camera", "imu", "imu"), "must name each of"),
])
def test_bad_policy_values_are_rejected_with_a_reason(name, value, reason):
    problem = policy_problem(_values(**{name: value}))
    assert problem is not None and reason in problem


@pytest.mark.parametrize("name, value", [
    ("policy.critical.trigger", "sometimes"), ("policy.low.rate_hz", 0.0), ("policy.low.rate_hz", -1.0),
    ("policy.normal.prune_ratio", 0.95), ("policy.full.rate_hz", float("nan")),
])
def test_bad_per_level_values_are_rejected_by_their_specs(name, value):
    specs = {spec.name: spec for spec in inference_params.PARAMS}
    problem = first_problem(specs, {name: value})
    assert problem is not None and name in problem


def test_parse_modalities_is_canonical_and_tolerant_of_spaces():
    assert parse_modalities(" audio , camera", "x") == ("camera", "audio")
    assert parse_modalities("", "x") == ()


# --- the policy fit's choice -------------------------------------------------------------------------
def _candidate(ratio, rate, trigger, shed, accuracy, cpu, onset=150.0):
    return Candidate(ratio, rate, trigger, shed, accuracy, cpu, onset, 2 * rate)


def test_each_level_gets_the_candidate_its_rule_names():
    found = [
        _candidate(0.0, 10.0, "rate", "", 73.5, 0.100),  # the reference
        _candidate(0.2, 10.0, "rate", "", 73.0, 0.095),  # >= 98% of 73.5, cheaper: normal
        _candidate(0.4, 5.0, "change", "imu", 69.0, 0.045),  # within 50%: low
        _candidate(0.6, 5.0, "change", "imu", 66.0, 0.044),
        _candidate(0.2, 2.0, "change", "imu", 68.0, 0.024),  # >= 90% of 73.5, cheapest: critical
        _candidate(0.6, 2.0, "change", "imu,audio", 55.0, 0.015),  # cheaper, but too inaccurate
        _candidate(0.0, 2.0, "change", "imu", 70.0, 0.020, onset=900.0),  # too slow to qualify
    ]
    chosen = choose(found)
    assert chosen["full"]["candidate"]["cpu_core"] == 0.100
    assert chosen["normal"]["candidate"]["accuracy"] == 73.0
    assert chosen["low"]["candidate"]["accuracy"] == 69.0
    assert chosen["critical"]["candidate"]["accuracy"] == 68.0 and chosen["critical"]["met"]
    block = config_block(chosen, ["camera", "audio", "imu"])
    assert block["inference_node"]["policy"]["critical"] == {"prune_ratio": 0.2, "rate_hz": 2.0, "trigger": "change",
                                                             "shed": "imu"}
    assert block["heartbeat_monitor"]["power"]["check_periods_s"] == [0.0, 0.0, 0.2, 0.5]


def test_a_level_no_candidate_can_meet_gets_the_cheapest_and_says_so():
    found = [_candidate(0.0, 10.0, "rate", "", 73.5, 0.100), _candidate(0.6, 2.0, "change", "imu", 60.0, 0.070)]
    chosen = choose(found)
    assert not chosen["low"]["met"] and chosen["low"]["candidate"]["cpu_core"] == 0.070


def test_pareto_front_keeps_only_undominated_candidates():
    a, b, c = (_candidate(0.0, 10.0, "rate", "", 73.5, 0.10), _candidate(0.2, 5.0, "rate", "", 70.0, 0.05),
               _candidate(0.4, 5.0, "rate", "", 69.0, 0.06))  # c: dearer and worse than b
    assert pareto_front([a, b, c]) == [b, a]


def test_modality_values_rank_by_accuracy_added_per_cpu():
    accuracy = {(tuple(subset), 0.0): 50.0 for subset in MODALITY_SUBSETS}
    accuracy[(MODALITIES, 0.0)] = 73.5
    accuracy[(("imu", "audio"), 0.0)] = 55.2  # camera adds 18.3
    accuracy[(("camera", "audio"), 0.0)] = 70.5  # imu adds 3.0
    accuracy[(("camera", "imu"), 0.0)] = 62.7  # audio adds 10.8
    rows = modality_values(accuracy, {"camera": 3.0, "imu": 7.0, "audio": 6.0})
    assert [row["modality"] for row in rows] == ["camera", "audio", "imu"]
    assert rows[-1]["accuracy_added_points"] == pytest.approx(3.0)


def test_the_reference_is_full_power_as_it_was():
    assert REFERENCE == {"prune_ratio": 0.0, "rate_hz": 10.0, "trigger": "rate", "shed": ""}
    assert Behaviour(10.0, "rate", "").check_period_s() == 0.0
    assert LevelPolicy(0.0, 2.0, "change", ("imu",)).unshed() == ("camera", "audio")
