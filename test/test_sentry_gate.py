"""SentryGate: trained on per-subset saliency, it gives subset-specific, zero-shot plans."""

import pytest
import torch

from sentryfuse_ros.modalities import MODALITY_SUBSETS
from conftest import TINY, kept_counts
from sentryfuse_ros.model import CheckpointError, SentryAttend
from sentryfuse_ros.model.gate_checkpoint import load_gate, save_gate
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.activation_stats import activation_stats
from sentryfuse_ros.pruning.bias_compensation import with_bias_compensation
from sentryfuse_ros.pruning.gate_targets import budget_grid, head_removal_losses, iterative_targets
from sentryfuse_ros.pruning.mask_tuning import tune_masks
from sentryfuse_ros.pruning.gate_training import GateTrainingConfig, gate_config_for, train_gate
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import plan_from_scores
from sentryfuse_ros.pruning.sentry_gate_method import SentryGateMethod, gate_plan
from sentryfuse_ros.pruning.slicing import masked_model, sliced_model

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


@pytest.mark.parametrize("heads", ["ablation", "fisher", "taylor"])
@pytest.mark.parametrize("one_shot", [False, True])
def test_targets_score_removed_structures_zero_and_the_rest_positive(heads, one_shot):
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    batches = list(_calibration(32, 0).batches(("camera", "audio")))
    stats = activation_stats(model, batches)
    targets = iterative_targets(model, batches, budget_grid(0.25, 0.5), stats.head_mean, stats.channel_mean,
                                head_criterion=heads, one_shot=one_shot)
    assert [t.budget for t in targets] == [0.0, 0.25, 0.5]
    # The target for a budget has round(b x 8) heads and round(b x 64) channels at zero.
    for target, zero_heads, zero_channels in zip(targets, (0, 2, 4), (0, 16, 32)):
        assert sum(int((h == 0).sum()) for h in target.heads) == zero_heads
        assert sum(int((h > 0).sum()) for h in target.heads) == 8 - zero_heads
        assert sum(int((c == 0).sum()) for c in target.channels) == zero_channels
    if one_shot:  # measured once: the survivors keep their budget-0 scores
        kept = targets[2].channels[0] > 0
        assert torch.equal(targets[2].channels[0][kept], targets[0].channels[0][kept])


def test_iterative_targets_re_measure_after_each_step():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    batches = list(_calibration(32, 0).batches(("imu",)))
    stats = activation_stats(model, batches)
    targets = iterative_targets(model, batches, [0.0, 0.5], stats.head_mean, stats.channel_mean, head_criterion="fisher")
    kept = targets[1].channels[0] > 0
    assert not torch.allclose(targets[1].channels[0][kept], targets[0].channels[0][kept])


def test_head_removal_loss_is_the_measured_loss_of_the_compensated_removal():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    batches = list(_calibration(32, 0).batches(("camera", "imu")))
    stats = activation_stats(model, batches)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = head_removal_losses(model, batches, stats.head_mean)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # restored exactly
    full = [tuple(range(4))] * 2
    for layer, head in ((0, 1), (1, 3)):
        kept = [list(k) for k in full]
        kept[layer].remove(head)
        plan = plan_from_scores([torch.ones(4), torch.ones(4)], [torch.ones(32)] * 2, 0.0)
        plan = type(plan)(tuple(type(l)(tuple(k), l.kept_channels) for l, k in zip(plan.layers, kept)), 0.0)
        removed = masked_model(model, with_bias_compensation(model, plan, stats.head_mean, stats.channel_mean))

        def loss(m):
            with torch.no_grad():
                return sum(torch.nn.functional.cross_entropy(m(x), y, reduction="sum").item() for x, y in batches) / 32

        assert losses[layer][head].item() == pytest.approx(loss(removed) - loss(model), abs=1e-5)


@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_gate_fits_its_targets_and_reports_rank_correlation(trained):
    _, _, report = trained
    first, last = report["fit_loss_first_last"]
    assert last < first / 5
    for subset_report in report["subsets"].values():
        assert subset_report["train_plan_agreement"] > 0.9
        assert -1.0 <= subset_report["gate_spearman_channels"] <= 1.0


@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_different_modality_subsets_give_different_plans(trained):
    model, gate, _ = trained
    plans = {subset: gate_plan(gate, model, subset, 0.5, "none") for subset in MODALITY_SUBSETS}
    kept = {subset: tuple(layer.kept_channels for layer in plan.layers) for subset, plan in plans.items()}
    assert len(set(kept.values())) > 1


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.6])
@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_gate_plan_has_the_right_counts_and_slices_exactly(trained, ratio):
    model, gate, _ = trained
    plan = SentryGateMethod(gate=gate).plan(model, ("imu", "audio"), ratio, calibration=None, seed=0)
    assert kept_counts(plan) == (8 - round(ratio * 8), 64 - round(ratio * 64))
    inputs = {name: tensor[:3] for name, tensor in _calibration(3, 5).inputs.items() if name in ("imu", "audio")}
    torch.testing.assert_close(sliced_model(model, plan)(inputs), masked_model(model, plan)(inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_bias_compensation_changes_only_biases(trained):
    model, gate, _ = trained
    plain = gate_plan(gate, model, ("camera",), 0.4, "none")
    compensated = gate_plan(gate, model, ("camera",), 0.4, "bias_compensation")
    assert [l.kept_channels for l in plain.layers] == [l.kept_channels for l in compensated.layers]
    assert all(layer.ffn_bias_correction.abs().sum() > 0 for layer in compensated.layers)


@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_gate_checkpoint_round_trip_and_backbone_check(trained, tmp_path):
    model, gate, report = trained
    path = save_gate(gate, tmp_path / "gate", backbone_sha256="abc", report=report)
    loaded = load_gate(path, expected_backbone_sha256="abc")
    assert loaded.report["subsets"].keys() == report["subsets"].keys()
    assert loaded.gate.config == gate.config  # the refinement and tuned budgets included
    torch.testing.assert_close(loaded.gate.channel_scales, gate.channel_scales)
    for subset in MODALITY_SUBSETS:
        torch.testing.assert_close(loaded.gate.scores(subset, 0.3).channels[1], gate.scores(subset, 0.3).channels[1])
    with pytest.raises(CheckpointError, match="different backbone"):
        load_gate(path, expected_backbone_sha256="def")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt|digest"):
        load_gate(path)


@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_refinement_is_chosen_on_heldout_data_and_followed_by_the_plans(trained):
    model, gate, report = trained
    choice = report["refinement"]
    accuracy = choice["heldout_accuracy"]
    assert choice["chosen"] == gate.config.refinement and accuracy[choice["chosen"]] == max(accuracy.values())
    subset = ("camera", "imu")
    compensated = gate_plan(gate, model, subset, 0.5, "bias_compensation")
    tuned = gate_plan(gate, model, subset, 0.5, "mask_tuning")
    plain = gate_plan(gate, model, subset, 0.5, "none")
    assert compensated.layers[0].attn_bias_correction is not None and plain.layers[0].attn_bias_correction is None
    assert [l.kept_heads for l in tuned.layers] == [l.kept_heads for l in plain.layers]
    assert all(len(l.channel_scales) == len(l.kept_channels) for l in tuned.layers)
    assert any(abs(s - 1.0) > 1e-3 for l in tuned.layers for s in l.channel_scales)
    assert gate_plan(gate, model, subset, 0.55, "mask_tuning") == gate_plan(gate, model, subset, 0.55, "none")


@pytest.mark.slow  # trains a gate (the module's `trained` fixture, ~10 s)
def test_stored_tuning_scales_reproduce_mask_tuning_of_the_gate_plan(trained):
    model, gate, _ = trained
    subset, budget = ("audio",), 0.3
    scores = gate.scores(subset, budget)
    direct = tune_masks(model, plan_from_scores(scores.heads, scores.channels, budget),
                        list(_calibration(64, 0).batches(subset)))
    stored = gate_plan(gate, model, subset, budget, "mask_tuning")
    for mine, wanted in zip(stored.layers, direct.layers):
        if wanted.channel_scales is not None:
            assert mine.channel_scales == pytest.approx(wanted.channel_scales, abs=1e-5)


def test_gate_rejects_bad_situations():
    gate = SentryGate(gate_config_for(SentryAttend(TINY), hidden=16))
    with pytest.raises(ValueError, match="budget"):
        gate.scores(("camera",), 1.5)
    with pytest.raises(ValueError, match="at least one modality"):
        gate.scores((), 0.2)
    with pytest.raises(ValueError, match="unknown modalities"):
        gate.scores(("lidar",), 0.2)


def test_calibration_split_is_disjoint_and_complete():
    calibration = _calibration(10, 0)
    first, rest = calibration.split(4, seed=3)
    assert len(first.labels) == 4 and len(rest.labels) == 6
    rows = torch.cat([first.inputs["imu"], rest.inputs["imu"]]).flatten(1)
    assert len({tuple(row[:3].tolist()) for row in rows}) == 10  # every example exactly once
    assert torch.equal(calibration.sample(4, seed=3).labels, first.labels)


def test_channel_criterion_must_be_known():
    with pytest.raises(ValueError, match="channel_target"):
        GateTrainingConfig(channel_target="magnitude")
