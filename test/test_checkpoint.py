"""Checkpoints: safetensors + JSON round trip; every broken checkpoint fails with a clear CheckpointError."""

from dataclasses import replace
import json

import pytest
import torch

from conftest import NARROW
from sentryfuse_ros.model import (
    CheckpointError,
    LayerShape,
    SentryAttend,
    load_checkpoint,
    save_checkpoint,
    shipped_checkpoint,
)
from sentryfuse_ros.model.checkpoint import checkpoint_paths
from sentryfuse_ros.training.config import variant_config

INPUTS = {"camera": torch.randn(2, 1, 28, 28), "imu": torch.randn(2, 6, 200), "audio": torch.randn(2, 40, 101)}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = SentryAttend(NARROW).eval()
    model.fit_input_normalization({name: tensor * 2 + 1 for name, tensor in INPUTS.items()})
    model.blocks[0].attn.head_mask[3] = 0.0
    weights = save_checkpoint(model, tmp_path / "model", meta={"variant": "tiny", "epoch": 3})
    return model, weights


def test_round_trip_restores_weights_buffers_config_and_meta(saved):
    model, weights = saved
    assert weights.name == "model.safetensors" and weights.with_suffix(".json").is_file()
    loaded = load_checkpoint(weights)
    assert loaded.model.config == NARROW and loaded.meta == {"variant": "tiny", "epoch": 3}
    assert not loaded.model.training
    assert loaded.model.blocks[0].attn.head_mask.tolist() == [1.0, 1.0, 1.0, 0.0]
    torch.testing.assert_close(loaded.model(INPUTS), model(INPUTS))


def test_sliced_model_round_trips(tmp_path):
    layers = (
        LayerShape(n_heads=3, n_kv_groups=2, head_group=(1, 0, 1), ffn_dim=9),
        LayerShape(n_heads=1, n_kv_groups=1, head_group=(0,), ffn_dim=0),
    )
    model = SentryAttend(replace(NARROW, layers=layers)).eval()
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "sliced")).model
    assert loaded.config.layers == layers
    torch.testing.assert_close(loaded(INPUTS), model(INPUTS))


def test_paths_accept_stem_or_either_file(tmp_path):
    expected = (tmp_path / "m.safetensors", tmp_path / "m.json")
    assert checkpoint_paths(tmp_path / "m") == checkpoint_paths(tmp_path / "m.json") == expected


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", forbidden)
    load_checkpoint(saved[1])


def _expect_error(path, reason_pattern, culprit):
    with pytest.raises(CheckpointError, match=reason_pattern) as error:
        load_checkpoint(path)
    assert error.value.path == culprit and str(culprit) in str(error.value)


def test_missing_files(saved):
    _, weights = saved
    config = weights.with_suffix(".json")
    config.unlink()
    _expect_error(weights, "file not found", config)
    _expect_error(weights.with_name("other.safetensors"), "file not found", weights.with_name("other.safetensors"))


def test_config_not_json(saved):
    _, weights = saved
    weights.with_suffix(".json").write_text("{ not json")
    _expect_error(weights, "not valid JSON", weights.with_suffix(".json"))


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda doc: doc.update(format="something-else"), "not a sentryattend checkpoint"),
        (lambda doc: doc.update(format_version=99), "format version 99 is not supported"),
        (lambda doc: doc.pop("weights_sha256"), "config lacks"),
        (lambda doc: doc["config"].update(n_heads=3), "invalid model config"),
        (lambda doc: doc["config"].update(colour="red"), "invalid model config: unknown config fields"),
    ],
)
def test_bad_config_documents(saved, edit, reason):
    _, weights = saved
    config_path = weights.with_suffix(".json")
    document = json.loads(config_path.read_text())
    edit(document)
    config_path.write_text(json.dumps(document))
    _expect_error(weights, reason, config_path)


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("ffn_dim", 32, r"tensors do not match the config: blocks\.0\.ffn\.ffn_mask has shape \(24,\), config needs \(32,\)"),
        ("n_layers", 3, r"tensors do not match the config: missing blocks\.2\.attn_norm\.weight"),
        ("n_layers", 1, r"tensors do not match the config: unexpected blocks\.1\."),
    ],
)
def test_config_that_does_not_match_the_tensors(saved, field, value, reason):
    _, weights = saved
    config_path = weights.with_suffix(".json")
    document = json.loads(config_path.read_text())
    document["config"][field] = value
    config_path.write_text(json.dumps(document))
    _expect_error(weights, reason, weights)


def test_corrupt_safetensors_header(saved):
    _, weights = saved
    data = bytearray(weights.read_bytes())
    data[8:16] = b"\x00garbage"
    weights.write_bytes(bytes(data))
    _expect_error(weights, "corrupt safetensors file", weights)


def test_truncated_safetensors(saved):
    _, weights = saved
    weights.write_bytes(weights.read_bytes()[:-100])
    _expect_error(weights, "corrupt safetensors file", weights)


def test_damaged_tensor_bytes_caught_by_digest(saved):
    _, weights = saved
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    _expect_error(weights, "SHA-256 differs", weights)


@pytest.mark.parametrize("name", ["sentryattend", "dense", "no_dropout"])
def test_shipped_checkpoints_load_fit_the_size_budget_and_match_their_recipe(name):
    weights = shipped_checkpoint(name)
    assert weights.stat().st_size <= 10 * 1024 * 1024
    loaded = load_checkpoint(weights)
    assert loaded.meta["variant"] == name
    # `sentryfuse train --variant <name>` with defaults is the recipe that produced the file
    # (the thread count is how fast it ran, not what it learned).
    recipe = json.loads(json.dumps(variant_config(name).to_dict()))
    # They were trained before joint training existed: no `joint` field means none.
    recorded = {"joint": None, **loaded.meta["train_config"], "threads": None}
    assert recorded == {**recipe, "threads": None}
    assert loaded.model(INPUTS).shape == (2, 10)
