"""SentryAttend: any modality subset, missing modalities left out, prunable and sliceable layers."""

from dataclasses import replace
from math import ceil

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import NARROW
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS, subset_name
from sentryfuse_ros.model import LayerShape, SentryAttend, SentryAttendConfig



def random_inputs(batch=2, subset=MODALITIES, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = {"camera": (1, 28, 28), "imu": (6, 200), "audio": (40, 101)}
    return {name: torch.randn(batch, *shapes[name], generator=generator) for name in subset}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SentryAttend(NARROW).eval()


def tokens_per_modality(config) -> dict[str, int]:
    """Patch tokens per modality: the input size over the config's patch size, rounded up."""
    spec = INPUT_SPEC
    (camera_rows, camera_cols), (mel_rows, frame_cols) = config.camera_patch, config.audio_patch
    return {
        "camera": ceil(spec.image_size / camera_rows) * ceil(spec.image_size / camera_cols),
        "imu": ceil(spec.imu_window_samples / config.imu_patch),
        "audio": ceil(spec.audio_n_mels / mel_rows) * ceil(spec.audio_frames / frame_cols),
    }


@pytest.mark.parametrize("subset", MODALITY_SUBSETS, ids=subset_name)
def test_any_subset_gives_logits_and_only_its_tokens(model, subset):
    lengths = []
    model.blocks[0].attn.head_output.register_forward_hook(lambda m, i, out: lengths.append(out.shape[2]))
    logits = model(random_inputs(batch=3, subset=subset))
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    tokens = tokens_per_modality(NARROW)
    # CLS + one summary per live modality + the live modalities' patches; nothing for the rest.
    assert lengths == [1 + len(subset) + sum(tokens[name] for name in subset)]


def test_missing_modality_tokenizer_never_runs(model):
    def refuse(*_):
        raise AssertionError("tokenizer of a missing modality ran")

    model.tokenizers["imu"].register_forward_pre_hook(refuse)
    model(random_inputs(subset=("camera", "audio")))
    with pytest.raises(AssertionError, match="missing modality ran"):
        model(random_inputs())


def test_live_modality_values_change_the_output_and_results_do_not_depend_on_batch_mates(model):
    inputs = random_inputs(batch=4)
    changed = {**inputs, "audio": inputs["audio"] + 1.0}
    assert not torch.allclose(model(inputs), model(changed))
    single = model({name: tensor[:1] for name, tensor in inputs.items()})
    torch.testing.assert_close(model(inputs)[:1], single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({}, "no modality given"),
        ({"lidar": torch.zeros(1, 3)}, "not inputs of this model"),
        ({"camera": torch.zeros(1, 28, 28)}, r"expected input of shape \(B, 1, 28, 28\)"),
        ({"camera": torch.zeros(2, 1, 28, 28), "imu": torch.zeros(3, 6, 200)}, "batch sizes differ"),
    ],
)
def test_bad_inputs_fail_with_clear_message(model, inputs, message):
    with pytest.raises(ValueError, match=message):
        model(inputs)


def test_hooks_give_taylor_saliency_of_heads_and_ffn_channels(model):
    activations = {}

    def keep(name):
        def hook(_module, _inputs, output):
            output.retain_grad()
            activations[name] = output

        return hook

    model.blocks[1].attn.head_output.register_forward_hook(keep("heads"))
    model.blocks[1].ffn.hidden.register_forward_hook(keep("ffn"))
    model(random_inputs(subset=("camera", "imu"))).logsumexp(dim=1).sum().backward()
    heads, ffn = activations["heads"], activations["ffn"]
    assert heads.shape[:2] == (2, NARROW.n_heads) and heads.shape[3] == NARROW.head_dim
    assert ffn.shape[0] == 2 and ffn.shape[2] == NARROW.ffn_dim
    head_saliency = (heads * heads.grad).abs().sum(dim=(0, 2, 3))
    channel_saliency = (ffn * ffn.grad).abs().sum(dim=(0, 1))
    assert head_saliency.shape == (NARROW.n_heads,) and (head_saliency > 0).all()
    assert channel_saliency.shape == (NARROW.ffn_dim,) and (channel_saliency > 0).any()


def test_set_masks_prunes_and_reset_restores(model):
    inputs = random_inputs()
    full = model(inputs)
    head_masks = [torch.tensor([1.0, 0.0, 1.0, 0.0]), None]
    ffn_masks = [None, (torch.arange(NARROW.ffn_dim) % 2).float()]
    model.set_masks(head_masks, ffn_masks)
    assert model.blocks[0].attn.head_mask.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert model.blocks[1].attn.head_mask.tolist() == [1.0] * 4
    assert not torch.allclose(model(inputs), full)
    model.set_masks([torch.ones(NARROW.n_heads)] * NARROW.n_layers, [torch.ones(NARROW.ffn_dim)] * NARROW.n_layers)
    torch.testing.assert_close(model(inputs), full)
    with pytest.raises(ValueError, match="one head mask and one FFN mask per layer"):
        model.set_masks(head_masks[:1], ffn_masks)


def test_sliced_layers_with_uneven_heads_groups_and_widths_run():
    layers = (
        LayerShape(n_heads=3, n_kv_groups=2, head_group=(0, 1, 1), ffn_dim=7),
        LayerShape(n_heads=0, n_kv_groups=0, head_group=(), ffn_dim=5),
    )
    config = replace(NARROW, layers=layers)
    sliced = SentryAttend(config).eval()
    assert sliced.blocks[0].attn.k.weight.shape == (2 * NARROW.head_dim, NARROW.d_model)
    assert sliced.blocks[0].attn.head_group.tolist() == [0, 1, 1]
    assert sliced.blocks[0].ffn.up.weight.shape == (7, NARROW.d_model)
    assert sliced.blocks[1].attn is None and sliced.blocks[1].ffn.down.weight.shape == (NARROW.d_model, 5)
    assert sliced(random_inputs(subset=("audio",))).shape == (2, 10)


def test_config_round_trips_through_dict_and_rejects_bad_values():
    layers = (LayerShape(n_heads=2, n_kv_groups=1, head_group=(0, 0), ffn_dim=3),) * 2
    config = replace(NARROW, layers=layers)
    assert SentryAttendConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown config fields"):
        SentryAttendConfig.from_dict({"d_modle": 8})
    with pytest.raises(ValueError, match="multiple of n_kv_groups"):
        SentryAttendConfig(n_heads=4, n_kv_groups=3)
    with pytest.raises(ValueError, match="exactly the groups"):
        LayerShape(n_heads=2, n_kv_groups=2, head_group=(0, 0), ffn_dim=3)


def test_dense_twin_has_same_width_and_depth_full_kv_and_more_flops():
    sparse_config = SentryAttendConfig()
    dense_config = sparse_config.dense_twin()
    assert (dense_config.d_model, dense_config.n_layers, dense_config.n_heads, dense_config.ffn_dim) == (
        sparse_config.d_model,
        sparse_config.n_layers,
        sparse_config.n_heads,
        sparse_config.ffn_dim,
    )
    assert dense_config.attention == "dense_mha" and dense_config.n_kv_groups == dense_config.n_heads
    flops = {}
    for name, config in (("sparse", sparse_config), ("dense", dense_config)):
        with FlopCounterMode(display=False) as counter:
            SentryAttend(config).eval()(random_inputs(batch=1))
        flops[name] = counter.get_total_flops()
    assert flops["sparse"] <= 0.85 * flops["dense"]  # the claim to beat: -15% GFLOPs


def test_input_normalization_standardises_training_data(model):
    samples = random_inputs(batch=64)
    samples = {name: tensor * 5.0 + 3.0 for name, tensor in samples.items()}
    model.fit_input_normalization(samples)
    imu = model.tokenizers["imu"]
    standardised = (samples["imu"] - imu.input_mean) / imu.input_std
    torch.testing.assert_close(standardised.mean(dim=(0, 2)), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(standardised.std(dim=(0, 2)), torch.ones(6), atol=1e-3, rtol=0)
    assert model.tokenizers["audio"].input_mean.shape == (40, 1)


def test_patch_embedding_equals_the_strided_convolution_it_replaces(model):
    generator = torch.Generator().manual_seed(3)
    for name, tokenizer in model.tokenizers.items():
        shape = (1, *tokenizer.sample_shape) if tokenizer.add_channel_axis else tokenizer.sample_shape
        padded = [size + pad for size, pad in zip(shape[1:], tokenizer.padding)]
        x = torch.randn(2, shape[0], *padded, generator=generator)
        with torch.no_grad():
            expected = tokenizer.embed(x).flatten(2).transpose(1, 2)
            assert torch.allclose(tokenizer._embed_patches(x), expected, atol=1e-5), name
