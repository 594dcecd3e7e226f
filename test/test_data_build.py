"""The pieces the benchmark is built from: voices and hold-outs, source extraction, strokes,
the pen IMU model and the corruption recipe. None of these need the built cache."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from sentryfuse_ros.data.config import CorruptionRecipe, PenModel, SignalLevels, SyntheticVoicePlan
from sentryfuse_ros.data.corruption import (
    add_noise,
    coloured_noise,
    corrupt_frame,
    corrupt_imu,
    place_utterance,
    speech_window,
)
from sentryfuse_ros.data.pen_imu import GRAVITY_MS2, pen_imu
from sentryfuse_ros.data.sources import SourceError, _apt_get_download, _extract
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.data.strokes import digit_strokes, thin
from sentryfuse_ros.data.voices import ESPEAK_VARIANTS, HUMAN_VOICES, synthetic_voices

# ----------------------------------------------------------------------------- voices


def test_held_out_human_voices_follow_the_rules():
    train = [voice for voice in HUMAN_VOICES if voice.split == "train"]
    val = [voice for voice in HUMAN_VOICES if voice.split == "val"]
    test = [voice for voice in HUMAN_VOICES if voice.split == "test"]
    assert len(val) >= 1 and len(test) >= 2
    train_speakers = {voice.speaker for voice in train}
    train_languages = {voice.language for voice in train}
    for voice in val + test:
        assert voice.speaker not in train_speakers, f"{voice.voice_id} is a training speaker"
        assert voice.language in train_languages, f"nobody speaks {voice.language} in training"
    assert len({voice.voice_id for voice in HUMAN_VOICES}) == len(HUMAN_VOICES)


def test_synthetic_voices_use_disjoint_variants_per_split():
    voices = synthetic_voices(SyntheticVoicePlan())
    assert all(voice.is_synthetic for voice in voices)
    variants = {split: {v.espeak_variant for v in voices if v.split == split} for split in ("train", "val", "test")}
    assert not variants["train"] & variants["val"] and not variants["train"] & variants["test"]
    assert not variants["val"] & variants["test"]
    assert all(v.espeak_variant in ESPEAK_VARIANTS for v in voices)
    assert voices == synthetic_voices(SyntheticVoicePlan())  # deterministic
    plan = SyntheticVoicePlan()
    assert sum(v.split == "train" for v in voices) == 5 * plan.train_voices_per_language


# ----------------------------------------------------------------------------- sources


def test_extract_takes_only_the_matching_files(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: sf-test\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    )
    (root / "usr/share/sounds/digits").mkdir(parents=True)
    for name in ("0.wav", "1.wav", "notes.txt"):
        (root / "usr/share/sounds/digits" / name).write_text(name)
    deb = tmp_path / "sf-test_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True)

    target = tmp_path / "out"
    _extract(deb, ("usr/share/sounds/digits/[0-9].wav",), target)
    extracted = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert extracted == ["usr/share/sounds/digits/0.wav", "usr/share/sounds/digits/1.wav"]
    with pytest.raises(SourceError, match="lacks expected files"):
        _extract(deb, ("usr/share/sounds/digits/[0-9].gsm",), tmp_path / "other")


def test_apt_get_failure_explains_what_to_do(tmp_path):
    with pytest.raises(SourceError, match="apt-get update"):
        _apt_get_download(["sentryfuse-no-such-package-xyz"], tmp_path)


# ----------------------------------------------------------------------------- strokes


def test_thinning_leaves_a_one_pixel_line():
    mask = np.zeros((30, 30), np.uint8)
    mask[10:15, 3:27] = 1  # a 5-pixel-thick horizontal bar
    skeleton = thin(mask)
    assert skeleton.sum() > 15
    assert (skeleton.sum(axis=0) <= 1).all()  # one pixel per column
    assert set(np.flatnonzero(skeleton.sum(axis=1))) <= {11, 12, 13}


def _draw(points, thickness=2):
    import cv2

    frame = np.zeros((28, 28), np.uint8)
    cv2.polylines(frame, [np.asarray(points, np.int32)], False, 255, thickness)
    return frame


def test_an_l_is_one_stroke_drawn_from_the_top():
    strokes = digit_strokes(_draw([(8, 4), (8, 22), (20, 22)]))
    assert len(strokes) == 1
    stroke = strokes[0]
    assert stroke[0, 1] < 8  # starts at the top end (y down)
    assert stroke[-1, 0] > 17  # ends at the right end of the foot
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    assert steps.max() < 1.0  # an ordered walk, no jumps


def test_separate_marks_become_separate_strokes():
    frame = _draw([(6, 4), (6, 22)]) | _draw([(20, 4), (20, 22)])
    assert len(digit_strokes(frame)) == 2


# ----------------------------------------------------------------------------- pen IMU


def _vertical_stroke():
    return [np.column_stack([np.full(40, 14.0), np.linspace(4, 24, 40)])]


def test_pen_imu_shape_gravity_and_motion():
    imu = pen_imu(_vertical_stroke(), PenModel(), np.random.default_rng(0))
    assert imu.shape == (INPUT_SPEC.imu_window_samples, 6) and imu.dtype == np.float32
    # At rest the accelerometer measures gravity, whatever the pen's tilt.
    assert abs(np.linalg.norm(imu[:5, :3].mean(axis=0)) - GRAVITY_MS2) < 0.3
    # Writing moves and turns the pen far beyond the sensor noise (0.1 s means, noise ~0.01).
    blocks = imu.reshape(20, 10, 6).mean(axis=1)
    assert np.abs(blocks[:, :3] - blocks[0, :3]).max() > 0.2  # m/s^2
    assert np.abs(blocks[:, 3:] - blocks[0, 3:]).max() > 0.05  # rad/s


def test_pen_imu_is_deterministic_and_varies_with_the_seed():
    first = pen_imu(_vertical_stroke(), PenModel(), np.random.default_rng(1))
    again = pen_imu(_vertical_stroke(), PenModel(), np.random.default_rng(1))
    other = pen_imu(_vertical_stroke(), PenModel(), np.random.default_rng(2))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


# ----------------------------------------------------------------------------- corruption


def test_zero_severity_leaves_signals_alone():
    recipe = CorruptionRecipe()
    frame = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(corrupt_frame(frame, 0.0, recipe, np.random.default_rng(1)), frame)
    imu = np.random.default_rng(2).standard_normal((200, 6)).astype(np.float32)
    np.testing.assert_array_equal(corrupt_imu(imu, 0.0, recipe, np.random.default_rng(3)), imu)


def test_severity_degrades_the_camera():
    recipe = CorruptionRecipe()
    frame = _draw([(8, 4), (8, 22), (20, 22)])
    errors = [
        np.abs(corrupt_frame(frame, s, recipe, np.random.default_rng(4)).astype(float) - frame).mean()
        for s in (0.25, 0.5, 1.0)
    ]
    assert errors[0] < errors[1] < errors[2]


@pytest.mark.parametrize("severity", [0.0, 0.5, 1.0])
def test_audio_window_follows_the_recipe(severity):
    recipe, levels = CorruptionRecipe(), SignalLevels()
    window, snr_db = speech_window(_tone_clip(), severity, recipe, levels, np.random.default_rng(5))
    assert window.dtype == np.int16 and window.shape == (int(INPUT_SPEC.audio_window_s * 8000),)
    assert snr_db == pytest.approx(recipe.snr_db_clean - severity * (recipe.snr_db_clean - recipe.snr_db_worst))
    assert np.abs(window).max() <= levels.peak_limit * 32767 + 1


def _tone_clip(seconds=0.3):
    return (0.1 * np.sin(2 * np.pi * 440 * np.arange(int(8000 * seconds)) / 8000)).astype(np.float32)


def test_utterance_is_placed_at_the_drawn_level():
    levels = SignalLevels()
    speech, level = place_utterance(_tone_clip(), levels, np.random.default_rng(6))
    placed = np.flatnonzero(speech)
    utterance = speech[placed[0] : placed[0] + 2400]
    assert np.sqrt(np.mean(utterance**2)) == pytest.approx(level, rel=1e-6)
    assert levels.speech_rms_dbfs[0] <= 20 * np.log10(level) <= levels.speech_rms_dbfs[1]


@pytest.mark.parametrize("snr_db", [20.0, 0.0, -10.0])
@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_noise_is_added_at_the_requested_snr(snr_db, colour):
    speech, level = place_utterance(_tone_clip(), SignalLevels(), np.random.default_rng(7))
    noise = add_noise(speech, level, snr_db, colour, np.random.default_rng(8)) - speech
    assert 10 * np.log10(level**2 / np.mean(noise**2)) == pytest.approx(snr_db, abs=1e-6)


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_coloured_noise_has_unit_rms_and_its_slope(colour):
    noise = coloured_noise(8000, colour, np.random.default_rng(6))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
    power = np.abs(np.fft.rfft(noise)) ** 2
    low, high = power[10:200].mean(), power[2000:3990].mean()
    assert {"white": 0.5 < low / high < 2, "pink": low / high > 5, "brown": low / high > 100}[colour]
