"""SentryGate: trained on per-subset saliency, it gives subset-specific, zero-shot plans."""

import pytest
import torch

from sentryfuse_ros.modalities import MODALITY_SUBSETS
from sentryfuse_ros.model import CheckpointError, SentryAttend, SentryAttendConfig
from sentryfuse_ros.model.gate_checkpoint import load_gate, save_gate
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.gate_targets import budget_grid, iterative_taylor_targets
from sentryfuse_ros.pruning.gate_training import GateTrainingConfig, gate_config_for, train_gate
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import plan_from_scores
from sentryfuse_ros.pruning.sentry_gate_method import SentryGateMethod, gate_plan
from sentryfuse_ros.pruning.slicing import masked_model, sliced_model

TINY = SentryAttendConfig(d_model=32, n_layers=2, n_heads=4, n_kv_groups=2, head_dim=8, ffn_dim=32, dropout=0.0)
SHAPES = {"camera": (1, 28, 28), "imu": (6, 200), "audio": (40, 101)}


def _calibration(n, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(n, *shape, generator=generator) for name, shape in SHAPES.items()}
    return Calibration(inputs, torch.randint(0, 10, (n,), generator=generator), batch_size=32)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    config = GateTrainingConfig(examples_per_subset=64, heldout_examples=32, budget_step=0.1, max_budget=0.6, fit_steps=800)
    gate, report = train_gate(model, _calibration(64, 0), _calibration(32, 1), config)
    return model, gate, report


def test_iterative_targets_keep_pruned_structures_at_zero():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    batches = list(_calibration(32, 0).batches(("camera", "audio")))
    targets = iterative_taylor_targets(model, batches, budget_grid(0.25, 0.5))
    assert [t.budget for t in targets] == [0.0, 0.25, 0.5]
    assert all(torch.all(h > 0) for h in targets[0].heads)
    # The target for a budget is measured in the state pruned to it: round(b x 8) heads and
    # round(b x 64) channels read zero.
    for target, zero_heads, zero_channels in zip(targets, (0, 2, 4), (0, 16, 32)):
        assert sum(int((h == 0).sum()) for h in target.heads) == zero_heads
        assert sum(int((c == 0).sum()) for c in target.channels) == zero_channels


def test_gate_fits_its_targets_and_reports_rank_correlation(trained):
    _, _, report = trained
    first, last = report["fit_loss_first_last"]
    assert last < first / 5
    for subset_report in report["subsets"].values():
        assert subset_report["train_plan_agreement"] > 0.9
        assert -1.0 <= subset_report["gate_spearman_channels"] <= 1.0


def test_different_modality_subsets_give_different_plans(trained):
    model, gate, _ = trained
    plans = {subset: gate_plan(gate, model, subset, 0.5, compensate=False) for subset in MODALITY_SUBSETS}
    kept = {subset: tuple(layer.kept_channels for layer in plan.layers) for subset, plan in plans.items()}
    assert len(set(kept.values())) > 1


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.6])
def test_gate_plan_has_the_right_counts_and_slices_exactly(trained, ratio):
    model, gate, _ = trained
    plan = SentryGateMethod(gate=gate).plan(model, ("imu", "audio"), ratio, calibration=None, seed=0)
    assert plan.kept_counts() == (8 - round(ratio * 8), 64 - round(ratio * 64))
    inputs = {name: tensor[:3] for name, tensor in _calibration(3, 5).inputs.items() if name in ("imu", "audio")}
    torch.testing.assert_close(sliced_model(model, plan)(inputs), masked_model(model, plan)(inputs), rtol=1e-5, atol=1e-5)


def test_bias_compensation_changes_only_biases(trained):
    model, gate, _ = trained
    plain = gate_plan(gate, model, ("camera",), 0.4, compensate=False)
    compensated = gate_plan(gate, model, ("camera",), 0.4)
    assert [l.kept_channels for l in plain.layers] == [l.kept_channels for l in compensated.layers]
    assert all(layer.ffn_bias_correction.abs().sum() > 0 for layer in compensated.layers)


def test_gate_checkpoint_round_trip_and_backbone_check(trained, tmp_path):
    model, gate, report = trained
    path = save_gate(gate, tmp_path / "gate", backbone_sha256="abc", report=report)
    loaded = load_gate(path, expected_backbone_sha256="abc")
    assert loaded.report["subsets"].keys() == report["subsets"].keys()
    for subset in MODALITY_SUBSETS:
        torch.testing.assert_close(loaded.gate.scores(subset, 0.3).channels[1], gate.scores(subset, 0.3).channels[1])
    with pytest.raises(CheckpointError, match="different backbone"):
        load_gate(path, expected_backbone_sha256="def")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt|digest"):
        load_gate(path)


def test_gate_rejects_bad_situations():
    gate = SentryGate(gate_config_for(SentryAttend(TINY), hidden=16))
    with pytest.raises(ValueError, match="budget"):
        gate.scores(("camera",), 1.5)
    with pytest.raises(ValueError, match="at least one modality"):
        gate.scores((), 0.2)
    with pytest.raises(ValueError, match="unknown modalities"):
        gate.scores(("lidar",), 0.2)
