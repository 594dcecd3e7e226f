"""Training: curriculum, schedule, a tiny run that learns, seeds, dropped modalities never read."""

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace

import pytest
import torch

from conftest import ONE_LAYER
from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS
from sentryfuse_ros.model import SentryAttend, load_checkpoint
from sentryfuse_ros.training import trainer as trainer_module
from sentryfuse_ros.training.config import variant_config
from sentryfuse_ros.training.curriculum import NO_DROPOUT, ModalityDropoutCurriculum
from sentryfuse_ros.training.data import LabelledTensors
from sentryfuse_ros.training.metrics_log import read_metrics_log
from sentryfuse_ros.training.optimizer import learning_rate
from sentryfuse_ros.training.trainer import train



def learnable_data(n, seed):
    """Each modality is a fixed per-class pattern plus noise, so a tiny model learns fast."""
    shapes = {"camera": (1, 28, 28), "imu": (6, 200), "audio": (40, 101)}
    patterns = torch.Generator().manual_seed(1234)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=generator)
    inputs = {
        name: torch.randn(10, *shape, generator=patterns)[labels] + torch.randn(n, *shape, generator=generator)
        for name, shape in shapes.items()
    }
    return LabelledTensors(inputs, labels)


def tiny_config(**overrides):
    settings = dict(model=ONE_LAYER, epochs=3, batch_size=16, peak_lr=1e-2, warmup_steps=5, threads=1, log_every=4)
    settings.update(overrides)
    curriculum = ModalityDropoutCurriculum(warmup_epochs=1, ramp_epochs=1, max_drop_probability=0.8)
    return variant_config("sentryattend", curriculum=curriculum, **settings)


def test_curriculum_warms_up_then_ramps_and_covers_every_subset():
    curriculum = ModalityDropoutCurriculum(warmup_epochs=1, ramp_epochs=2, max_drop_probability=0.6)
    assert curriculum.drop_probability(0.5) == 0.0
    assert curriculum.drop_probability(2.0) == pytest.approx(0.3)
    assert curriculum.drop_probability(5.0) == pytest.approx(0.6)
    generator = torch.Generator().manual_seed(0)
    assert {curriculum.sample_subset(0.9, generator) for _ in range(50)} == {MODALITIES}
    late = [curriculum.sample_subset(4.0, generator) for _ in range(2000)]
    assert set(late) == set(MODALITY_SUBSETS)
    assert late.count(MODALITIES) / len(late) == pytest.approx(0.4, abs=0.05)
    assert {NO_DROPOUT.sample_subset(9.0, generator) for _ in range(50)} == {MODALITIES}


def test_learning_rate_warms_up_peaks_and_decays_to_minimum():
    config = tiny_config(warmup_steps=10, peak_lr=1e-3, min_lr=1e-5)
    rates = [learning_rate(step, 100, config) for step in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[100] == pytest.approx(1e-5)


def test_variants_differ_only_where_they_should():
    sentry, dense, no_dropout = (variant_config(name) for name in ("sentryattend", "dense", "no_dropout"))
    assert sentry.model.attention == "sparse_gqa" and dense.model.attention == "dense_mha"
    assert dense.model == sentry.model.dense_twin() and dense.curriculum == sentry.curriculum
    assert no_dropout.model == sentry.model and no_dropout.curriculum.max_drop_probability == 0.0
    assert replace(sentry, epochs=1) == variant_config("sentryattend", epochs=1)
    with pytest.raises(ValueError, match="unknown variant"):
        variant_config("huge")


def test_tiny_training_run_lowers_the_loss_and_saves_the_best_checkpoint(tmp_path):
    result = train(tiny_config(), learnable_data(256, 0), learnable_data(96, 1), tmp_path, progress=False)
    records = read_metrics_log(result.log)
    assert [r["event"] for r in records][0] == "start" and records[-1]["event"] == "end"
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 3 and epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"]
    assert any(r["event"] == "step" for r in records)
    assert set(epochs[0]["val_accuracy"]) == {"+".join(s) for s in MODALITY_SUBSETS}
    best = max(epochs, key=lambda r: r["val_score"])
    assert result.best_epoch == best["epoch"] and result.best_val_score == best["val_score"]
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.meta["epoch"] == best["epoch"] and loaded.meta["variant"] == "sentryattend"
    assert result.best_val_score > 0.3  # chance is 0.1


def test_same_seed_same_weights_other_seed_different(tmp_path):
    data, val = learnable_data(64, 0), learnable_data(32, 1)
    config = tiny_config(epochs=2)
    weights = []
    for run, seed in enumerate((0, 0, 1)):
        result = train(replace(config, seed=seed), data, val, tmp_path / str(run), progress=False)
        weights.append(result.checkpoint.read_bytes())
    assert weights[0] == weights[1] and weights[0] != weights[2]


class RecordingInputs(Mapping):
    """Training inputs that record every modality tensor handed out."""

    def __init__(self, inputs):
        self._inputs, self.reads = inputs, []

    def __getitem__(self, name):
        self.reads.append(name)
        return self._inputs[name]

    def __contains__(self, name):
        return name in self._inputs

    def __iter__(self):
        return iter(self._inputs)

    def __len__(self):
        return len(self._inputs)


def test_dropped_modality_tensors_are_never_read(tmp_path, monkeypatch):
    data = learnable_data(64, 0)
    recording = RecordingInputs(data.inputs)
    subsets_per_step = []

    class SpyModel(SentryAttend):
        def forward(self, inputs):
            if self.training:
                subsets_per_step.append(tuple(inputs))
            return super().forward(inputs)

    monkeypatch.setattr(trainer_module, "SentryAttend", SpyModel)
    config = tiny_config(epochs=3, batch_size=8)
    train(config, LabelledTensors(recording, data.labels), learnable_data(16, 1), tmp_path, progress=False)
    # The first three reads fit the input normalisation; after that, each step reads its subset only.
    assert recording.reads[:3] == list(MODALITIES)
    assert recording.reads[3:] == [name for subset in subsets_per_step for name in subset]
    assert len(set(subsets_per_step)) > 3


def test_fine_tuning_starts_from_the_checkpoint_and_keeps_its_input_statistics(tmp_path):
    start = train(tiny_config(epochs=1), learnable_data(64, 0), learnable_data(16, 1), tmp_path / "a", progress=False)
    init = load_checkpoint(start.checkpoint).model.train()
    before = {name: tensor.clone() for name, tensor in init.state_dict().items()}
    # A zero learning rate leaves every weight where it started: the run began from the checkpoint.
    frozen = tiny_config(epochs=1, peak_lr=0.0, min_lr=0.0)
    other_data = learnable_data(64, 5)
    result = train(frozen, other_data, learnable_data(16, 1), tmp_path / "b", progress=False, init=init)
    after = load_checkpoint(result.checkpoint).model.state_dict()
    for name, tensor in before.items():  # input statistics too: not refitted to the new data
        torch.testing.assert_close(after[name], tensor, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="not the config's model"):
        train(tiny_config(model=replace(ONE_LAYER, d_model=32)), other_data, other_data, tmp_path / "c", init=init)


def test_train_command_is_registered_with_its_variants():
    result = subprocess.run([sys.executable, "-m", "sentryfuse_ros.cli", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "{sentryattend,dense,no_dropout,sentryfuse-joint}" in result.stdout and "--out" in result.stdout
