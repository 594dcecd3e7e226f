"""Every baseline plans through plan_from_scores, differs from random, and its refinements help."""

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, kept_counts
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.pruning.baselines.flap import Flap
from sentryfuse_ros.pruning.baselines.kwon import KwonFisher
from sentryfuse_ros.pruning.baselines.magnitude import MagnitudePruning
from sentryfuse_ros.pruning.baselines.mask_rearrangement import rearranged_removal
from sentryfuse_ros.pruning.mask_tuning import tune_masks
from sentryfuse_ros.pruning.baselines.random import RandomPruning
from sentryfuse_ros.pruning.method import Calibration
from sentryfuse_ros.pruning.plan import plan_from_scores
from sentryfuse_ros.pruning.registry import FACTORIES, build_method
from sentryfuse_ros.pruning.saliency import mask_gradients
from sentryfuse_ros.pruning.slicing import masked_model, sliced_model

ALL = ("camera", "imu", "audio")
# Every baseline, the oracle and the ablations, but random itself (SentryGate has its own tests).
METHODS = [name for name in FACTORIES if name != "random"]


def _model(seed=0):
    torch.manual_seed(seed)
    model = SentryAttend(TINY).eval()
    with torch.no_grad():  # non-zero biases, so bias corrections have something to get right
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.1)
    return model


def _calibration(n=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = {
        "camera": torch.randn(n, 1, 28, 28, generator=generator),
        "imu": torch.randn(n, 6, 200, generator=generator),
        "audio": torch.randn(n, 40, 101, generator=generator),
    }
    return Calibration(inputs, torch.randint(0, 10, (n,), generator=generator), batch_size=8)


def _kept(plan):
    return [(layer.kept_heads, layer.kept_channels) for layer in plan.layers]


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def calibration():
    return _calibration()


@pytest.mark.parametrize("name", METHODS)
def test_each_method_plans_the_same_counts_as_random_but_differs_and_slices(name, model, calibration):
    method = build_method(name)
    assert method.name == name
    random_plan = RandomPruning().plan(model, ("camera",), 0.5, calibration, seed=0)
    plan = method.plan(model, ("camera",), 0.5, calibration, seed=0)
    assert kept_counts(plan) == kept_counts(random_plan)
    assert _kept(plan) != _kept(random_plan)
    outputs = sliced_model(model, plan)({"camera": calibration.inputs["camera"][:2]})
    assert outputs.shape == (2, TINY.n_classes) and torch.isfinite(outputs).all()


def test_random_draws_depend_on_the_seed_only(model, calibration):
    method = RandomPruning()
    assert _kept(method.plan(model, ALL, 0.5, calibration, 1)) == _kept(
        method.plan(model, ("imu",), 0.5, calibration, 1)
    )
    assert _kept(method.plan(model, ALL, 0.5, calibration, 1)) != _kept(method.plan(model, ALL, 0.5, calibration, 2))


def test_magnitude_removes_structures_whose_output_weights_are_zero():
    model = _model()
    with torch.no_grad():
        model.blocks[0].attn.o.weight[:, 8:16] = 0.0  # head 1 of layer 0 writes nothing
        model.blocks[1].ffn.down.weight[:, 5] = 0.0  # channel 5 of layer 1 writes nothing
    plan = MagnitudePruning().plan(model, ALL, 0.1, None, 0)
    assert 1 not in plan.layers[0].kept_heads
    assert 5 not in plan.layers[1].kept_channels


def test_oracle_measures_on_the_live_subset(model, calibration):
    oracle = build_method("oracle")
    plans = {
        subset: _kept(oracle.plan(model, subset, 0.5, calibration, 0)) for subset in [("camera",), ("audio",), ALL]
    }
    assert len({repr(plan) for plan in plans.values()}) > 1
    assert plans[ALL] == _kept(build_method("taylor").plan(model, ("camera",), 0.5, calibration, 0))


def _block_outputs(model, inputs):
    outputs = []
    handles = [block.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for block in model.blocks]
    try:
        logits = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return outputs, logits


def test_kwon_mask_tuning_reduces_reconstruction_error_on_calibration_data(model, calibration):
    plan = KwonFisher(tune=False).plan(model, ALL, 0.5, calibration, 0)
    tuned = tune_masks(model, plan, list(calibration.batches()))
    assert tuned.layers[0].head_scales is not None and tuned.layers[1].channel_scales is not None
    assert _kept(tuned) == _kept(plan)
    with torch.no_grad():
        teacher, _ = _block_outputs(model, calibration.inputs)
        plain, _ = _block_outputs(masked_model(model, plan), calibration.inputs)
        fitted, _ = _block_outputs(masked_model(model, tuned), calibration.inputs)
    for layer in range(TINY.n_layers):
        plain_error = F.mse_loss(plain[layer], teacher[layer])
        fitted_error = F.mse_loss(fitted[layer], teacher[layer])
        assert fitted_error < 0.9 * plain_error, f"layer {layer}: {fitted_error} vs {plain_error}"


def test_kwon_rearrangement_never_increases_the_block_fisher_objective(model, calibration):
    gradients = mask_gradients(model, calibration.batches())
    for layer_grads in gradients.channels:
        fisher = layer_grads.square().sum(dim=0)
        removed = fisher.argsort()[:12].tolist()
        rearranged = rearranged_removal(layer_grads, removed)
        assert len(rearranged) == len(set(rearranged)) == 12

        def objective(indices, grads=layer_grads):
            return float(grads[:, indices].sum(dim=1).square().sum())

        assert objective(rearranged) <= objective(removed) + 1e-9


@torch.no_grad()
def test_flap_bias_compensation_reduces_output_error(model, calibration):
    plain = Flap(compensate=False).plan(model, ALL, 0.5, calibration, 0)
    compensated = Flap().plan(model, ALL, 0.5, calibration, 0)
    assert _kept(plain) == _kept(compensated)
    assert compensated.layers[0].attn_bias_correction is not None
    teacher, teacher_logits = _block_outputs(model, calibration.inputs)
    without, without_logits = _block_outputs(masked_model(model, plain), calibration.inputs)
    with_bias, with_logits = _block_outputs(masked_model(model, compensated), calibration.inputs)
    for layer in range(TINY.n_layers):
        assert F.mse_loss(with_bias[layer], teacher[layer]) < F.mse_loss(without[layer], teacher[layer])
    assert F.mse_loss(with_logits, teacher_logits) < F.mse_loss(without_logits, teacher_logits)


def test_flap_scores_follow_activation_fluctuation(model, calibration):
    from sentryfuse_ros.pruning.activation_stats import activation_stats
    from sentryfuse_ros.pruning.baselines.flap import fluctuation_scores

    stats = activation_stats(model, calibration.batches())
    # Reference: the FFN hidden channels of layer 1, gathered directly.
    hidden = []
    handle = model.blocks[1].ffn.hidden.register_forward_hook(lambda _m, _i, out: hidden.append(out.flatten(0, 1)))
    with torch.no_grad():
        model(calibration.inputs)
    handle.remove()
    torch.testing.assert_close(stats.channel_var[1], hidden[0].var(dim=0), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(stats.channel_mean[1], hidden[0].mean(dim=0), rtol=1e-4, atol=1e-6)
    _, channel_scores = fluctuation_scores(model, stats)
    expected = hidden[0].var(dim=0) * model.blocks[1].ffn.down.weight.square().sum(dim=0)
    torch.testing.assert_close(channel_scores[1], expected, rtol=1e-4, atol=1e-9)


def test_plans_use_the_shared_ranking(model, calibration):
    """A baseline's kept sets are exactly plan_from_scores of its scores (no private ranking)."""
    heads, channels = mask_gradients(model, calibration.batches()).fisher()
    plan = KwonFisher(tune=False).plan(model, ALL, 0.3, calibration, 0)
    assert _kept(plan) == _kept(plan_from_scores(heads, channels, 0.3))
