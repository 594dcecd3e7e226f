"""Physically sliced models compute exactly what the masked model computes."""

import pytest
import torch

from conftest import TINY, kept_counts
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.modalities import MODALITY_SUBSETS
from sentryfuse_ros.pruning.plan import LayerPlan, PrunePlan, plan_from_scores
from sentryfuse_ros.pruning.slicing import masked_model, parameter_count, sliced_model



def _inputs(batch=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "camera": torch.randn(batch, 1, 28, 28, generator=generator),
        "imu": torch.randn(batch, 6, 200, generator=generator),
        "audio": torch.randn(batch, 40, 101, generator=generator),
    }


def _model(config=TINY, seed=0):
    torch.manual_seed(seed)
    model = SentryAttend(config).eval()
    with torch.no_grad():  # non-zero biases, so bias handling is really exercised
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.1)
    return model


def _random_scores(model, seed):
    generator = torch.Generator().manual_seed(seed)
    shapes = model.config.layer_shapes()
    return (
        [torch.rand(s.n_heads, generator=generator) for s in shapes],
        [torch.rand(s.ffn_dim, generator=generator) for s in shapes],
    )


@pytest.mark.parametrize("attention", ["sparse_gqa", "dense_mha"])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.7])
def test_sliced_equals_masked_on_every_modality_subset(attention, ratio):
    config = TINY if attention == "sparse_gqa" else TINY.dense_twin()
    model = _model(config)
    plan = plan_from_scores(*_random_scores(model, seed=int(ratio * 10)), ratio)
    masked, sliced = masked_model(model, plan), sliced_model(model, plan)
    inputs = _inputs()
    for subset in MODALITY_SUBSETS:
        live = {name: inputs[name] for name in subset}
        torch.testing.assert_close(sliced(live), masked(live), rtol=1e-5, atol=1e-5)
    if ratio > 0:
        assert parameter_count(sliced) < parameter_count(model)


def test_sliced_model_drops_empty_kv_groups_and_shrinks_projections():
    model = _model()
    # Layer 0 keeps heads 0 and 1 (both read group 0), so group 1 disappears.
    plan = PrunePlan((LayerPlan((0, 1), tuple(range(16))), LayerPlan((0, 2, 3), tuple(range(32)))), ratio=0.5)
    sliced = sliced_model(model, plan)
    first, second = sliced.config.layer_shapes()
    assert (first.n_heads, first.n_kv_groups, first.head_group, first.ffn_dim) == (2, 1, (0, 0), 16)
    assert (second.n_heads, second.n_kv_groups, second.head_group) == (3, 2, (0, 1, 1))
    assert sliced.blocks[0].attn.k.weight.shape == (8, 32)
    assert sliced.blocks[0].attn.q.weight.shape == (16, 32)
    assert sliced.blocks[0].ffn.up.weight.shape == (16, 32)
    inputs = _inputs()
    torch.testing.assert_close(sliced(inputs), masked_model(model, plan)(inputs), rtol=1e-5, atol=1e-5)


def test_scales_and_bias_corrections_fold_into_sliced_weights():
    model = _model()
    d = TINY.d_model
    plan = PrunePlan(
        tuple(
            LayerPlan(
                (1, 3), (2, 5, 7), head_scales=(0.5, 1.5), channel_scales=(2.0, -1.0, 0.25),
                attn_bias_correction=torch.full((d,), 0.1), ffn_bias_correction=torch.linspace(-1, 1, d),
            )
            for _ in range(2)
        ),
        ratio=0.5,
    )
    inputs = _inputs()
    torch.testing.assert_close(sliced_model(model, plan)(inputs), masked_model(model, plan)(inputs), rtol=1e-5, atol=1e-5)


def test_plan_removes_the_requested_count_with_per_layer_floors():
    model = _model()
    heads, channels = _random_scores(model, seed=1)
    for ratio in (0.1, 0.3, 0.5, 0.6):
        plan = plan_from_scores(heads, channels, ratio)
        kept_heads, kept_channels = kept_counts(plan)
        assert kept_heads == 8 - round(ratio * 8)
        assert kept_channels == 64 - round(ratio * 64)
        assert all(layer.kept_heads and len(layer.kept_channels) >= 2 for layer in plan.layers)
    # A layer whose scores are all tiny still keeps its floor.
    heads[0] = torch.full((4,), 1e-9)
    channels[0] = torch.zeros(32)
    plan = plan_from_scores(heads, channels, 0.9 - 1e-9)
    assert all(len(layer.kept_heads) >= 1 and len(layer.kept_channels) >= 2 for layer in plan.layers)


def test_plan_prefers_low_scores_and_rejects_bad_ratio():
    scores = [torch.tensor([4.0, 3.0, 2.0, 1.0]), torch.tensor([1.0, 1.0, 1.0, 1.0])]
    plan = plan_from_scores(scores, [torch.ones(32), torch.ones(32)], 0.25)
    # Normalised, layer 0 is (1.6, 1.2, 0.8, 0.4) and layer 1 is all 1.0: the two removed heads
    # are layer 0's weakest two, and layer 1 keeps everything.
    assert plan.layers[0].kept_heads == (0, 1)
    assert plan.layers[1].kept_heads == (0, 1, 2, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        plan_from_scores(scores, [torch.ones(32), torch.ones(32)], 1.0)
