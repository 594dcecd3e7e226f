"""The built benchmark: sizes, splits, held-out voices, raw signals reproducing the tensors,
determinism, and clear errors for a missing, corrupt or outdated cache.

The full cache is built once per machine by the same code as `sentryfuse data prepare`
(a few minutes the first time, then reused from ~/.cache/sentryfuse).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sentryfuse_ros.cli import main as sentryfuse
from sentryfuse_ros.data import build, cache
from sentryfuse_ros.data.build import prepare
from sentryfuse_ros.data.config import BuildConfig
from sentryfuse_ros.data.dataset import CacheError, RawSample, default_data_dir, load_split
from sentryfuse_ros.data.preprocess import audio_tensor, image_tensor, imu_tensor
from sentryfuse_ros.data.spec import INPUT_SPEC

BUILD_TIMEOUT = pytest.mark.timeout(1200)  # the first build on a machine takes minutes
SHAPES = {
    "camera": (1, INPUT_SPEC.image_size, INPUT_SPEC.image_size),
    "imu": (INPUT_SPEC.imu_channels, INPUT_SPEC.imu_window_samples),
    "audio": (INPUT_SPEC.audio_n_mels, INPUT_SPEC.audio_frames),
}


@pytest.fixture(scope="session")
def data_dir():
    directory = default_data_dir()
    prepare(directory)  # no-op when the cache is up to date
    return directory


@pytest.fixture(scope="session")
def splits(data_dir):
    return {name: load_split(name, data_dir) for name in cache.SPLITS}


# ----------------------------------------------------------------------------- without a cache


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTRYFUSE_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("SENTRYFUSE_DATA_DIR")
    assert default_data_dir().parts[-2:] == (".cache", "sentryfuse")


def test_missing_cache_says_to_prepare(tmp_path):
    with pytest.raises(CacheError, match="sentryfuse data prepare"):
        load_split("train", tmp_path)


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        load_split("training")


# ----------------------------------------------------------------------------- small builds


@pytest.fixture(scope="session")
def small_builds(data_dir, tmp_path_factory):
    """Two independent small builds of the same recipe (limit 40), one with two worker processes
    and one in-process, sharing the downloaded sources."""
    config = BuildConfig(limit=40)
    roots = []
    for name, workers in (("pool", 2), ("inline", 1)):
        root = tmp_path_factory.mktemp(name)
        (root / "sources").symlink_to(cache.sources_dir(data_dir), target_is_directory=True)
        prepare(root, config=config, workers=workers)
        roots.append(root)
    return config, roots


def _manifest(root, config):
    return json.loads((cache.benchmark_dir(root, config.limit) / cache.MANIFEST_NAME).read_text())


@BUILD_TIMEOUT
@pytest.mark.slow  # two small builds, one with worker processes
def test_build_is_deterministic(small_builds):
    config, (first, second) = small_builds
    checksums = [{split: entry["sha256"] for split, entry in _manifest(root, config)["splits"].items()}
                 for root in (first, second)]
    assert checksums[0] == checksums[1]
    assert set(checksums[0]) == set(cache.SPLITS)


@BUILD_TIMEOUT
@pytest.mark.slow  # two small builds, one with worker processes
def test_second_prepare_is_a_quick_no_op(small_builds, monkeypatch):
    config, (root, _) = small_builds
    bench = cache.benchmark_dir(root, config.limit)
    files_before = {path.name: path.stat().st_mtime_ns for path in bench.iterdir()}

    def no_work(*_args, **_kwargs):
        raise AssertionError("a second prepare fetched or built something")

    # Quick: it only checks the manifest and checksums; nothing is fetched, built or written.
    monkeypatch.setattr(build, "fetch_sources", no_work)
    monkeypatch.setattr(build, "load_or_build_clip_bank", no_work)
    monkeypatch.setattr(build, "_SplitBuilder", no_work)
    result = prepare(root, config=config)
    assert not result.built
    assert {path.name: path.stat().st_mtime_ns for path in bench.iterdir()} == files_before


@BUILD_TIMEOUT
@pytest.mark.slow  # two small builds, one with worker processes
def test_corrupt_or_outdated_cache_is_reported(small_builds, tmp_path):
    config, (root, _) = small_builds
    bench = cache.benchmark_dir(root, config.limit)
    assert len(load_split("val", root, config)) == 40

    outdated = BuildConfig(limit=40, seed=1)
    with pytest.raises(CacheError, match="different version or recipe"):
        load_split("val", root, outdated)

    copy = tmp_path / "copy"
    target = cache.benchmark_dir(copy, config.limit)
    target.mkdir(parents=True)
    for path in bench.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    truncated = cache.split_file(target, "val")
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(CacheError, match="wrong size"):
        load_split("val", copy, config)
    (target / cache.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CacheError, match="unreadable"):
        load_split("val", copy, config)
    # prepare notices the damage and rebuilds rather than trusting the cache
    assert not cache.is_up_to_date(target, config.fingerprint())


# ----------------------------------------------------------------------------- the full benchmark


@pytest.mark.slow  # seconds
@BUILD_TIMEOUT
def test_split_sizes_shapes_and_balance(splits):
    config = BuildConfig()
    expected = {"train": config.sizes.train, "val": config.sizes.val, "test": config.sizes.test,
                "test_sklearn": config.sizes.test}
    for name, split in splits.items():
        assert len(split) == expected[name]
        tensors = split.tensors()
        for modality, shape in SHAPES.items():
            assert tensors[modality].shape == (len(split), *shape)
            assert tensors[modality].dtype == torch.float32
            assert torch.isfinite(tensors[modality]).all()
        assert split.labels.dtype == torch.int64
        assert torch.bincount(split.labels, minlength=10).tolist() == [len(split) // 10] * 10


@BUILD_TIMEOUT
def test_image_pools_are_disjoint(splits):
    pools = {name: set(splits[name].image_index.tolist()) for name in ("train", "val", "test")}
    assert not pools["train"] & pools["val"]
    assert not pools["train"] & pools["test"]
    assert not pools["val"] & pools["test"]


@BUILD_TIMEOUT
def test_held_out_human_voices_are_identifiable(splits):
    def human_voices(split):
        return {name for name, synthetic in zip(split.voice_names(), split.is_synthetic_voice.tolist()) if not synthetic}

    assert human_voices(splits["val"]) == {"es-co"}
    assert human_voices(splits["test"]) == {"fr-armelle", "it-menardi"}
    train_voices = set(splits["train"].voice_names())
    for name in ("val", "test"):
        assert not train_voices & set(splits[name].voice_names())
        human_share = float((~splits[name].is_synthetic_voice).float().mean())
        assert 0.4 < human_share < 0.6
    for name, synthetic in zip(splits["train"].voice_names()[:500], splits["train"].is_synthetic_voice[:500].tolist()):
        assert synthetic == name.startswith("espeak-")


@BUILD_TIMEOUT
def test_corruption_metadata_follows_the_recipe(splits):
    recipe = BuildConfig().corruption
    corruption = splits["train"].corruption
    for severity in (corruption.camera_severity, corruption.imu_severity, corruption.audio_severity):
        assert 0 <= float(severity.min()) and float(severity.max()) <= 1
        assert abs(float(severity.mean()) - 0.5) < 0.02
    expected_snr = recipe.snr_db_clean - corruption.audio_severity * (recipe.snr_db_clean - recipe.snr_db_worst)
    assert torch.allclose(corruption.audio_snr_db, expected_snr, atol=1e-4)


@BUILD_TIMEOUT
@pytest.mark.parametrize("split_name", ["test", "test_sklearn"])
def test_raw_signals_reproduce_the_tensors(splits, split_name):
    split = splits[split_name]
    tensors = split.tensors()
    for index in (0, 1, 1234, len(split) - 1):
        raw = split.raw(index)
        assert isinstance(raw, RawSample) and raw.label == int(split.labels[index])
        assert raw.image.dtype == np.uint8 and raw.image.shape == (28, 28)
        assert raw.imu.dtype == np.float32 and raw.imu.shape == (INPUT_SPEC.imu_window_samples, 6)
        assert raw.audio.dtype == np.float32 and raw.audio.shape == (INPUT_SPEC.audio_window_samples,)
        assert torch.equal(image_tensor(raw.image), tensors["camera"][index])
        # IMU and audio tensors are stored as float16: equal to that precision.
        for modality, live in (("imu", imu_tensor(raw.imu, raw.imu_rate_hz)), ("audio", audio_tensor(raw.audio, raw.audio_rate_hz))):
            stored = tensors[modality][index]
            assert torch.allclose(live, stored, rtol=1e-3, atol=2e-3), modality


@BUILD_TIMEOUT
def test_test_sklearn_swaps_only_the_camera(splits):
    test, sklearn = splits["test"], splits["test_sklearn"]
    assert torch.equal(test.labels, sklearn.labels)
    assert torch.equal(test.tensors()["imu"], sklearn.tensors()["imu"])
    assert torch.equal(test.tensors()["audio"], sklearn.tensors()["audio"])
    assert not torch.equal(test.tensors()["camera"], sklearn.tensors()["camera"])
    assert sklearn.camera_source == "sklearn-digits"


@BUILD_TIMEOUT
def test_train_and_val_keep_no_raw_signals(splits):
    with pytest.raises(CacheError, match="raw signals are kept for test"):
        splits["train"].raw(0)


@BUILD_TIMEOUT
def test_cli_prepare_and_info(data_dir, capsys):
    assert sentryfuse(["data", "prepare", "--data-dir", str(data_dir)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert sentryfuse(["data", "info", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "15000 samples" in out and "fr-armelle, it-menardi" in out and "es-co" in out


def test_a_sample_streamed_as_sensor_messages_gives_the_stored_tensors(splits):
    """The node's windows, fed a test sample the way sensor_sim publishes it (IMU rows at 100 Hz,
    50 ms audio chunks), reproduce the tensors the offline evaluation uses."""
    from sentryfuse_ros.nodes.sensor_windows import SensorWindows
    from sentryfuse_ros.nodes.stamps import NS_PER_S

    split = splits["test"]
    stored = split.tensors()
    for index in range(5):
        raw = split.raw(index)
        windows, t0 = SensorWindows(), 100 * NS_PER_S
        windows.add_image(t0, "camera", np.asarray(raw.image, dtype=np.uint8))
        for row_index, row in enumerate(np.asarray(raw.imu, dtype=np.float32)):
            windows.add_imu(t0 + row_index * NS_PER_S // 100, "imu", row)
        audio, rate = np.asarray(raw.audio, dtype=np.float32), int(raw.audio_rate_hz)
        chunk = rate // 20
        for start in range(0, len(audio), chunk):
            windows.add_audio(t0 + start * NS_PER_S // rate, "microphone", audio[start:start + chunk], rate)
        snapshot = windows.snapshot(("camera", "imu", "audio"), max_skew_s=10.0)
        for name in ("camera", "imu", "audio"):
            torch.testing.assert_close(snapshot.inputs[name][0], stored[name][index], atol=2e-3, rtol=0)
