"""Joint training: the gate follows each subset's running importance, the backbone trains under
the gate's plans, masks never leak into checkpoints, and the result deploys like any gate."""

from dataclasses import replace

import pytest
import torch

from conftest import TINY
from sentryfuse_ros.model import SentryAttend, load_checkpoint
from sentryfuse_ros.model.gate_checkpoint import load_gate, save_gate
from sentryfuse_ros.pruning.plan import plan_from_scores
from sentryfuse_ros.pruning.saliency import MaskGradients, MaskGradientRecorder, mask_gradients
from sentryfuse_ros.pruning.sentry_gate_method import gate_plan
from sentryfuse_ros.training import distributed
from sentryfuse_ros.training.config import JOINT_VARIANT, variant_config
from sentryfuse_ros.training.curriculum import ModalityDropoutCurriculum
from sentryfuse_ros.training.joint import JointConfig, JointPruning, finish_gate, pruned_loss
from sentryfuse_ros.training.metrics_log import read_metrics_log
from sentryfuse_ros.training.trainer import train
from test_training import learnable_data

CAMERA, ALL = ("camera",), ("camera", "imu", "audio")


def _joint(seed=0, **overrides) -> JointPruning:
    return JointPruning(SentryAttend(TINY), JointConfig(**overrides), seed)


@pytest.mark.parametrize("values", [dict(min_budget=0.0), dict(max_budget=1.0), dict(min_budget=0.5, max_budget=0.4),
                                    dict(distill_weight=1.5), dict(importance_decay=1.0)])
def test_config_rejects_what_cannot_train(values):
    with pytest.raises(ValueError):
        JointConfig(**values)


def test_budgets_start_after_the_warm_up_and_ramp_to_the_top():
    config = JointConfig(min_budget=0.1, max_budget=0.8, start_epoch=1.0, ramp_epochs=2.0)
    assert config.top_budget(0.99) is None
    assert config.top_budget(1.0) == pytest.approx(0.1)
    assert config.top_budget(2.0) == pytest.approx(0.45)
    assert config.top_budget(7.0) == pytest.approx(0.8)
    joint = JointPruning(SentryAttend(TINY), config, seed=0)
    assert joint.draw_budget(0.5) is None
    drawn = [joint.draw_budget(5.0) for _ in range(500)]
    assert 0.1 <= min(drawn) < 0.15 and 0.75 < max(drawn) <= 0.8


def _gradients(heads, channels) -> MaskGradients:
    """One example's mask gradients: Fisher = their squares."""
    return MaskGradients([torch.tensor([h]) for h in heads], [torch.tensor([c]) for c in channels])


def test_running_importance_is_an_exponential_mean_per_subset():
    joint = _joint(importance_decay=0.5)
    heads, channels = [[1.0] * 4, [2.0] * 4], [[1.0] * 32, [3.0] * 32]
    joint.record(CAMERA, _gradients(heads, channels))
    joint.record(CAMERA, _gradients([[3.0] * 4, [2.0] * 4], channels))
    joint.record(ALL, _gradients(heads, channels))
    camera_heads, camera_channels = joint.importance[CAMERA]
    assert torch.allclose(camera_heads[0], torch.full((4,), 0.5 * 1 + 0.5 * 9))  # Fisher: squares
    assert torch.allclose(camera_channels[1], torch.full((32,), 9.0))
    assert torch.allclose(joint.importance[ALL][0][0], torch.ones(4))


@pytest.mark.slow
def test_the_gate_learns_each_subsets_order_and_its_plans_follow_it():
    joint = _joint(gate_learning_rate=1e-2)
    generator = torch.Generator().manual_seed(3)
    orders = {}
    for subset in (CAMERA, ALL):  # a different, well separated importance per subset
        heads = [torch.rand(4, generator=generator) + 0.1 for _ in range(2)]
        channels = [torch.rand(32, generator=generator) + 0.1 for _ in range(2)]
        joint.importance[subset] = ([h.square() for h in heads], [c.square() for c in channels])
        orders[subset] = plan_from_scores(*joint.importance[subset], 0.5)
    losses = [joint.fit_step() for _ in range(600)]
    assert losses[-1] < 0.1 * losses[0]
    for subset, wanted in orders.items():
        scores = joint.gate.scores(subset, 0.5)
        mine = plan_from_scores(scores.heads, scores.channels, 0.5)
        kept = sum(len(layer.kept_channels) for layer in wanted.layers)
        shared = sum(len(set(m.kept_channels) & set(w.kept_channels)) for m, w in zip(mine.layers, wanted.layers))
        assert shared / kept > 0.9
        assert [m.kept_heads for m in mine.layers] == [w.kept_heads for w in wanted.layers]


def test_the_pruned_block_applies_the_gates_plan_and_always_unmasks():
    joint = _joint()
    model = joint.model
    heads_wanted, channels_wanted = joint.masks(ALL, 0.5)
    with joint.pruned(ALL, 0.5) as pruned:
        assert pruned is model
        assert all(torch.equal(b.attn.head_mask, m) for b, m in zip(model.blocks, heads_wanted))
        assert all(torch.equal(b.ffn.ffn_mask, m) for b, m in zip(model.blocks, channels_wanted))
        assert sum(float(m.sum()) for m in channels_wanted) == 32  # half of 2 x 32 channels kept
    with pytest.raises(RuntimeError), joint.pruned(CAMERA, 0.8):
        raise RuntimeError("a failing pruned pass")
    assert all(bool((b.attn.head_mask == 1).all() and (b.ffn.ffn_mask == 1).all()) for b in model.blocks)


def test_recorder_gives_the_same_gradients_as_the_calibration_measure():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    data = learnable_data(12, seed=1)
    batch = {name: data.inputs[name] for name in ALL}
    with MaskGradientRecorder(model) as recorder:
        torch.nn.functional.cross_entropy(model(batch), data.labels, reduction="sum").backward()
    with torch.no_grad():
        model(batch)  # a forward without a graph records nothing
    measured = mask_gradients(model, [(batch, data.labels)])
    for mine, theirs in zip(recorder.gradients().channels, measured.channels):
        assert torch.allclose(mine, theirs, atol=1e-6)
    with pytest.raises(ValueError, match="no batches"):
        MaskGradientRecorder(model).gradients()


def test_recorder_keeps_no_activation_alive_after_the_backward():
    """Joint training records every step: a hook holding its own tensor leaked each step's activations."""
    import weakref

    model = SentryAttend(TINY)
    data = learnable_data(4, seed=1)
    outputs = []
    handle = model.blocks[0].ffn.hidden.register_forward_hook(lambda _m, _i, out: outputs.append(weakref.ref(out)))
    with MaskGradientRecorder(model) as recorder:
        torch.nn.functional.cross_entropy(model(data.inputs), data.labels).backward()
    handle.remove()
    assert len(recorder.gradients().channels[0]) == 4
    assert outputs and outputs[0]() is None  # freed by reference counting, no garbage collection needed


def test_pruned_loss_mixes_labels_and_the_full_widths_prediction():
    logits, full = torch.randn(5, 10), torch.randn(5, 10)
    labels = torch.randint(10, (5,))
    config = JointConfig(distill_weight=0.0)
    assert pruned_loss(logits, labels, full, config, 0.0) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, labels)))
    assert float(pruned_loss(full, labels, full, replace(config, distill_weight=1.0), 0.0)) == pytest.approx(0, abs=1e-6)


def _joint_config(**overrides):
    curriculum = ModalityDropoutCurriculum(warmup_epochs=0.5, ramp_epochs=1, max_drop_probability=0.8)
    joint = JointConfig(start_epoch=0.5, ramp_epochs=1.0, val_budgets=(0.5,), refinement_check_budgets=(0.4,))
    settings = dict(model=TINY, epochs=3, batch_size=16, peak_lr=1e-2, warmup_steps=5, threads=1, log_every=4,
                    curriculum=curriculum, joint=joint)
    settings.update(overrides)
    return variant_config(JOINT_VARIANT, **settings)


@pytest.mark.slow
def test_joint_training_learns_returns_its_gate_and_saves_an_unmasked_backbone(tmp_path):
    train_data, val_data = learnable_data(192, seed=0), learnable_data(64, seed=1)
    config = _joint_config()
    result = train(config, train_data, val_data, tmp_path, progress=False)
    assert result.gate is not None
    records = read_metrics_log(result.log)
    epochs = [r for r in records if r["event"] == "epoch"]
    pruned = epochs[-1]["val_pruned_accuracy"]["0.5"]
    assert set(pruned) == {"camera", "imu", "audio", "camera+imu", "camera+audio", "imu+audio", "camera+imu+audio"}
    assert sum(pruned.values()) / len(pruned) > 0.5  # 10 classes: chance is 0.1
    # The score averages the unpruned subsets and the pruned plans.
    unpruned = sum(epochs[-1]["val_accuracy"].values()) / 7
    assert epochs[-1]["val_score"] == pytest.approx((unpruned + sum(pruned.values()) / 7) / 2)
    backbone = load_checkpoint(result.checkpoint).model
    assert all(bool((b.attn.head_mask == 1).all() and (b.ffn.ffn_mask == 1).all()) for b in backbone.blocks)
    # The gate is refined and deploys from its file like a post-hoc one.
    choice = finish_gate(result.gate, backbone, val_data.inputs, val_data.labels, config.joint, seed=0, examples=16)
    assert choice["chosen"] == result.gate.config.refinement
    assert result.gate.channel_means.abs().sum() > 0
    saved = load_gate(save_gate(result.gate, tmp_path / "gate", backbone_sha256="x"), expected_backbone_sha256="x")
    plan = gate_plan(saved.gate, backbone, CAMERA, 0.5)
    assert sum(len(layer.kept_heads) for layer in plan.layers) == 4


def test_joint_training_refuses_several_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ValueError, match="one process"):
        train(_joint_config(), learnable_data(32, 0), learnable_data(16, 1), tmp_path, progress=False)
