"""`sentryfuse gate decide`: the rule that decides whether a new backbone and gate are shipped."""

import json

import pytest

from conftest import TINY, save_with_gate
from sentryfuse_ros.cli import main
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.evaluation.ship_decision import decide, level_ratios

FULL = "camera+imu+audio"
LEVELS = {"full": 0.0, "normal": 0.0, "low": 0.2, "critical": 0.6}


def _figures(unpruned, unpruned_full, at_02, at_06):
    return {0.0: {"camera": unpruned, FULL: unpruned_full}, 0.2: {"camera": at_02, FULL: at_02},
            0.6: {"camera": at_06, FULL: at_06}}


def test_a_candidate_better_at_every_pruning_level_and_as_good_unpruned_ships():
    current = _figures(0.60, 0.70, 0.55, 0.40)
    decision = decide(_figures(0.597, 0.696, 0.56, 0.50), current, LEVELS, FULL)
    assert decision.ship
    assert "low (ratio 0.2): +1.0 points (wins)" in decision.reasons
    assert "critical (ratio 0.6): +10.0 points (wins)" in decision.reasons


@pytest.mark.parametrize("candidate, failing", [
    (_figures(0.58, 0.70, 0.56, 0.50), "unpruned, mean over subsets: -1.0 points (beyond -0.5)"),
    (_figures(0.60, 0.69, 0.56, 0.50), "unpruned, with every modality: -1.0 points (beyond -0.5)"),
    (_figures(0.60, 0.70, 0.55, 0.50), "low (ratio 0.2): +0.0 points (does not win)"),
    (_figures(0.60, 0.70, 0.60, 0.39), "critical (ratio 0.6): -1.0 points (does not win)"),
])
def test_a_candidate_that_loses_anywhere_is_not_shipped(candidate, failing):
    decision = decide(candidate, _figures(0.60, 0.70, 0.55, 0.40), LEVELS, FULL)
    assert not decision.ship
    assert failing in decision.reasons


def test_the_levels_are_the_nodes_shipped_policy():
    from sentryfuse_ros.nodes.inference_params import PARAMS
    from sentryfuse_ros.nodes.power_level import LEVEL_NAMES

    defaults = {spec.name: spec.default for spec in PARAMS}
    assert level_ratios() == {level: defaults[f"policy.{level}.prune_ratio"] for level in LEVEL_NAMES}


@pytest.mark.slow
def test_decide_compares_two_pairs_on_the_validation_split(tmp_path, capsys):
    """End to end on the benchmark's validation split: a pair against itself never ships (it does not win)."""
    weights, _gate = save_with_gate(SentryAttend(TINY).eval(), tmp_path / "tiny")  # the gate beside the weights
    out = tmp_path / "decision.json"
    assert main(["gate", "decide", "--candidate", str(weights), "--current", str(weights), "--examples", "64",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict: keep the current pair" in printed
    document = json.loads(out.read_text())
    assert document["ship"] is False
    assert set(document["validation_accuracy"]["candidate"]) >= {"0", "0.2", "0.8"}
    assert document["validation_accuracy"]["candidate"] == document["validation_accuracy"]["current"]


def test_decide_reports_a_missing_checkpoint(tmp_path, capsys):
    assert main(["gate", "decide", "--candidate", str(tmp_path / "missing.safetensors")]) == 2
    assert "sentryfuse gate decide: error:" in capsys.readouterr().err
