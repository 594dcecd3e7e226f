"""Forward runtimes of cached plans: each agrees with the eager plan; a broken one falls back to eager."""

import logging

import pytest
import torch

from sentryfuse_ros.data.dataset import CacheError, load_split
from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS
from sentryfuse_ros.model import SentryAttend, SentryAttendConfig
from sentryfuse_ros.model.checkpoint import backbone_sha256, load_checkpoint, shipped_checkpoint
from sentryfuse_ros.model.config import LayerShape
from sentryfuse_ros.model.gate_checkpoint import load_gate, shipped_gate
from sentryfuse_ros.pruning import runtime
from sentryfuse_ros.pruning.plan_cache import PlanCache
from sentryfuse_ros.pruning.runtime import RUNTIMES, TOLERANCE, choose_runtime, probe_inputs

RATIOS = (0.0, 0.2, 0.4, 0.6)
N_SAMPLES = 3


@pytest.fixture(scope="module")
def shipped():
    """(backbone, gate) as the inference node loads them."""
    weights = shipped_checkpoint()
    backbone = load_checkpoint(weights).model
    gate = load_gate(shipped_gate(), expected_backbone_sha256=backbone_sha256(weights)).gate
    return backbone, gate


@pytest.fixture(scope="module")
def samples(shipped):
    """A few batch-1 inputs with every modality: test-split samples if prepared, else random draws."""
    try:
        tensors = load_split("test").tensors()
        return [{name: tensors[name][i : i + 1] for name in MODALITIES} for i in range(N_SAMPLES)]
    except CacheError:
        return [probe_inputs(shipped[0], MODALITIES, seed) for seed in range(1, N_SAMPLES + 1)]


@pytest.mark.slow  # seconds
@pytest.mark.parametrize("name", RUNTIMES)
def test_every_runtime_gives_the_eager_logits_on_every_plan(shipped, samples, name):
    cache = PlanCache(*shipped, runtime=name)
    for plan in cache.prebuild(MODALITY_SUBSETS, RATIOS):
        assert plan.runtime == name, plan.runtime_choice.rejected
        for sample in samples:
            with torch.inference_mode():
                expected = plan.model({modality: sample[modality] for modality in plan.subset})
            # forward reads only the plan's modalities: the full sample may be passed.
            logits = plan.forward(sample)
            assert logits.shape == expected.shape == (1, 10)
            assert (logits - expected).abs().max().item() <= TOLERANCE, plan.plan_id


def test_a_runtime_that_fails_to_build_falls_back_to_eager_with_the_reason(shipped, monkeypatch, caplog):
    def broken_export(model, subset):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(runtime, "export_onnx", broken_export)
    with caplog.at_level(logging.WARNING, logger=runtime.__name__):
        plan = PlanCache(*shipped, runtime="onnxruntime").get(("camera", "audio"), 0.4)
    assert plan.runtime == "eager"
    assert "exporter broke" in plan.runtime_choice.rejected["onnxruntime"]
    assert "exporter broke" in caplog.text
    sample = probe_inputs(plan.model, plan.subset)
    with torch.inference_mode():
        assert torch.equal(plan.forward(sample), plan.model(sample))


def test_a_runtime_that_disagrees_with_eager_is_rejected(shipped, monkeypatch):
    agreeing_call = runtime.OnnxRuntime.__call__
    monkeypatch.setattr(runtime.OnnxRuntime, "__call__", lambda self, inputs: agreeing_call(self, inputs) + 1e-3)
    choice = choose_runtime(shipped[0], ("imu",), policy="auto")
    assert choice.runtime.name == "eager"
    assert "differ from eager" in choice.rejected["onnxruntime"]


def test_auto_picks_the_fastest_of_the_built_runtimes(shipped):
    choice = choose_runtime(shipped[0], MODALITIES, policy="auto")
    assert set(choice.timings_ms) == set(RUNTIMES) and not choice.rejected
    assert choice.runtime.name == min(choice.timings_ms, key=choice.timings_ms.get)
    assert choice.build_ms > 0


def test_unknown_runtime_policy_is_refused(shipped):
    with pytest.raises(ValueError, match="unknown runtime policy"):
        PlanCache(*shipped, runtime="tensorrt")


@pytest.mark.parametrize(
    "config",
    [
        # The dense multi-head twin (bench prune runs it too) and a layer sliced down to its FFN.
        SentryAttendConfig(
            attention="dense_mha", d_model=16, n_layers=2, n_heads=2, n_kv_groups=2, head_dim=4, ffn_dim=8
        ),
        SentryAttendConfig(
            d_model=16,
            n_layers=2,
            n_heads=4,
            n_kv_groups=2,
            head_dim=4,
            ffn_dim=8,
            layers=(LayerShape(0, 0, (), 8), LayerShape(3, 2, (0, 1, 1), 5)),
        ),
    ],
    ids=["dense", "attention-less-layer"],
)
def test_onnx_export_covers_dense_attention_and_pruned_away_layers(config):
    torch.manual_seed(0)
    model = SentryAttend(config).eval()
    choice = choose_runtime(model, ("camera", "audio"), policy="onnxruntime")
    assert choice.runtime.name == "onnxruntime", choice.rejected


@pytest.mark.slow  # seconds
def test_onnx_plans_agree_with_eager_on_live_windows_that_straddle_two_samples(shipped):
    """What the node feeds a plan mid-stream: windows holding the end of one sample and the start
    of the next, as sensor messages arrive (IMU rows at 100 Hz, 50 ms audio chunks, a frame)."""
    import numpy as np

    from sentryfuse_ros.nodes.sensor_windows import SensorWindows
    from sentryfuse_ros.nodes.stamps import NS_PER_S

    try:
        split = load_split("test")
    except CacheError:
        pytest.skip("needs `sentryfuse data prepare`")
    cache = PlanCache(*shipped, runtime="onnxruntime")
    windows, compared = SensorWindows(), 0
    for k in range(2):
        raw, base = split.raw(k), (100 + 2 * k) * NS_PER_S
        windows.add_image(base, "camera", np.asarray(raw.image, dtype=np.uint8))
        rows = np.asarray(raw.imu, dtype=np.float32)
        audio, rate = np.asarray(raw.audio, dtype=np.float32), int(raw.audio_rate_hz)
        chunk = rate // 20
        for step in range(len(rows)):
            windows.add_imu(base + step * NS_PER_S // 100, "imu", rows[step])
            if step % 5 == 0 and step * chunk // 5 < len(audio):
                start = step * chunk // 5
                windows.add_audio(base + start * NS_PER_S // rate, "mic", audio[start:start + chunk], rate)
            if k == 1 and step % 50 == 25:  # mid-way through the second sample
                for subset in MODALITY_SUBSETS:
                    snapshot = windows.snapshot(subset, 10.0)
                    for ratio in (0.0, 0.6):
                        plan = cache.get(tuple(snapshot.inputs), ratio)
                        difference = (plan.forward(snapshot.inputs) - plan.model(snapshot.inputs)).abs().max()
                        assert difference <= TOLERANCE, (plan.plan_id, float(difference))
                        compared += 1
    assert compared == 4 * len(MODALITY_SUBSETS) * 2
