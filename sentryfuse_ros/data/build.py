"""`sentryfuse data prepare`: build the tri-modal digits benchmark deterministically.

A sample is one handwritten digit image, the IMU signal of a pen writing that same image, and
one spoken clip of the same digit, drawn from disjoint train/val/test pools of images and
voices, each modality corrupted with its own per-sample severity (corruption.py).

Every random draw comes from a generator seeded by (seed, split, stream, sample index), so the
build gives the same bytes every time and a sample does not depend on how many came before.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from sentryfuse_ros.data import cache
from sentryfuse_ros.data.audio_clips import CLIP_RATE_HZ, tool_versions
from sentryfuse_ros.data.clip_bank import ClipBank, load_or_build_clip_bank
from sentryfuse_ros.data.config import BuildConfig
from sentryfuse_ros.data.corruption import augment_frame, corrupt_frame, corrupt_imu, speech_window
from sentryfuse_ros.data.digit_images import load_mnist_digits, load_sklearn_digits
from sentryfuse_ros.data.pen_imu import pen_imu
from sentryfuse_ros.data.preprocess import audio_tensors, imu_tensors, resample_audio
from sentryfuse_ros.data.sources import fetch_sources
from sentryfuse_ros.data.spec import INPUT_SPEC
from sentryfuse_ros.data.strokes import digit_strokes
from sentryfuse_ros.data.voices import HUMAN_VOICES, synthetic_voices
from sentryfuse_ros.digest import file_sha256

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_CHUNK = 250  # samples per worker job
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class _Stream(IntEnum):
    SEVERITY = 0
    CAMERA_AUGMENT = 1
    CAMERA_CORRUPTION = 2
    IMU = 3
    AUDIO = 4


@dataclass
class PrepareResult:
    bench_dir: Path
    built: bool
    seconds: float


def prepare(
    data_dir: Path, force: bool = False, config: BuildConfig | None = None, workers: int = 2, log=print
) -> PrepareResult:
    """Build the benchmark into data_dir unless an intact, up-to-date build is already there."""
    started = time.monotonic()
    config = config or BuildConfig()
    bench_dir = cache.benchmark_dir(data_dir, config.limit)
    if not force and cache.is_up_to_date(bench_dir, config.fingerprint()):
        return PrepareResult(bench_dir, False, time.monotonic() - started)
    sources = cache.sources_dir(data_dir)
    versions = fetch_sources(sources, log=log)
    voices = HUMAN_VOICES + synthetic_voices(config.synthetic_voices)
    bank = load_or_build_clip_bank(
        sources, voices, config.clip_variants, {**versions, **tool_versions()}, workers=max(workers, 1)
    )
    mnist_frames, mnist_labels = load_mnist_digits(sources)
    sklearn_frames, sklearn_labels = load_sklearn_digits(sources)
    builder = _SplitBuilder(config, bank, mnist_frames, mnist_labels, workers)
    splits = builder.build_all()

    partial = bench_dir.with_name(bench_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    entries = {}
    for split, arrays in splits.items():
        if split == "test":
            sklearn_arrays = builder.sklearn_camera(arrays, sklearn_frames, sklearn_labels)
            entries["test_sklearn"] = _write(partial, "test_sklearn", sklearn_arrays, config)
        entries[split] = _write(partial, split, arrays, config)
    manifest = {
        "format_version": cache.FORMAT_VERSION,
        "fingerprint": config.fingerprint(),
        "config": asdict(config),
        "source_versions": versions,
        "voices": [asdict(voice) for voice in voices],
        "splits": entries,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (partial / cache.MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, default=str))
    shutil.rmtree(bench_dir, ignore_errors=True)
    partial.rename(bench_dir)
    return PrepareResult(bench_dir, True, time.monotonic() - started)


def _write(directory: Path, split: str, arrays: dict[str, np.ndarray], config: BuildConfig) -> dict:
    path = cache.split_file(directory, split)
    # A single metadata entry: safetensors writes its metadata map in an unspecified order, and a
    # second entry would make the bytes (and the checksum) differ between runs.
    save_file({name: np.ascontiguousarray(array) for name, array in arrays.items()}, str(path),
              metadata={"fingerprint": config.fingerprint()})
    return {"samples": int(len(arrays["labels"])), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


@dataclass
class _Context:
    """Everything a worker needs to make samples; sent once to each worker process."""

    config: BuildConfig
    bank: ClipBank
    frames: np.ndarray
    strokes: dict[int, list[np.ndarray]]


_CONTEXT: _Context | None = None


def _set_context(context: _Context) -> None:
    global _CONTEXT
    _CONTEXT = context


class _SplitBuilder:
    def __init__(self, config: BuildConfig, bank: ClipBank, frames: np.ndarray, labels: np.ndarray, workers: int):
        self.config, self.bank, self.frames, self.labels, self.workers = config, bank, frames, labels, workers
        self.image_pools = self._image_pools()

    def build_all(self) -> dict[str, dict[str, np.ndarray]]:
        assignments = {split: self._assignments(split, self.config.size(split)) for split in _SPLIT_IDS}
        needed = sorted({int(image) for _, images in assignments.values() for image in images})
        context = _Context(self.config, self.bank, self.frames, {})
        with _pool(self.workers, context) as pool:
            frames = [self.frames[image] for image in needed]
            traced = _ordered_map(pool, digit_strokes, frames, "tracing strokes", "image")
            context.strokes = dict(zip(needed, traced))
        with _pool(self.workers, context) as pool:
            return {split: self._build_split(pool, split, *assignments[split]) for split in _SPLIT_IDS}

    def _image_pools(self) -> dict[str, list[np.ndarray]]:
        """split -> per class, the indices of that split's images (disjoint across splits)."""
        rng = np.random.default_rng([self.config.seed, 99])
        counts = self.config.images_per_class
        pools = {split: [] for split in _SPLIT_IDS}
        for digit in range(10):
            order = rng.permutation(np.flatnonzero(self.labels == digit))
            cuts = np.cumsum([counts.train, counts.val, counts.test])
            for split, chosen in zip(_SPLIT_IDS, np.split(order, cuts)[:3]):
                pools[split].append(chosen)
        return pools

    def _assignments(self, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Balanced labels in random order, and each sample's image (cycling through the pool)."""
        rng = np.random.default_rng([self.config.seed, _SPLIT_IDS[split], 100])
        labels = rng.permutation(np.arange(size) % 10)
        return labels, _cycle_pools(labels, self.image_pools[split], rng)

    def _build_split(self, pool, split: str, labels: np.ndarray, images: np.ndarray) -> dict[str, np.ndarray]:
        jobs = [(split, start, labels[start : start + _CHUNK], images[start : start + _CHUNK])
                for start in range(0, len(labels), _CHUNK)]
        chunks = _ordered_map(pool, _make_chunk, jobs, f"building {split}", "sample", weights=[len(job[2]) for job in jobs])
        arrays = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
        arrays.update(labels=labels.astype(np.int64), image_index=images)
        return arrays

    def sklearn_camera(self, test: dict, frames: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """The test samples' camera frames replaced by sklearn digits of the same label, corrupted
        with exactly the same draws as the MNIST frame they replace."""
        rng = np.random.default_rng([self.config.seed, 101])
        pools = [np.flatnonzero(labels == digit) for digit in range(10)]
        images = _cycle_pools(test["labels"], pools, rng)
        corrupted = np.stack([
            corrupt_frame(frames[image], float(test["camera_severity"][index]), self.config.corruption,
                          _sample_rng(self.config, "test", _Stream.CAMERA_CORRUPTION, index))
            for index, image in enumerate(images)
        ])
        return {"camera_frames": corrupted, "image_index": images, "labels": test["labels"]}


def _cycle_pools(labels: np.ndarray, pools: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """For every sample, an item of its label's pool: the pool in random order, reshuffled each pass."""
    chosen = np.empty(len(labels), dtype=np.int64)
    for digit in range(10):
        positions = np.flatnonzero(labels == digit)
        passes = -(-len(positions) // len(pools[digit]))
        order = np.concatenate([rng.permutation(pools[digit]) for _ in range(passes)]) if passes else []
        chosen[positions] = order[: len(positions)]
    return chosen


def _sample_rng(config: BuildConfig, split: str, stream: _Stream, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, _SPLIT_IDS[split], int(stream), index])


def _make_chunk(job) -> dict[str, np.ndarray]:
    """Samples start.. of a split: corrupted frames, model tensors, metadata (and raw signals for test)."""
    split, start, labels, images = job
    context = _CONTEXT
    voice_in_split = np.array([voice.split == split for voice in context.bank.voices])
    synthetic = np.array([voice.is_synthetic for voice in context.bank.voices])
    voice_pools = (np.flatnonzero(voice_in_split & ~synthetic), np.flatnonzero(voice_in_split & synthetic))
    samples = [
        _make_sample(context, split, start + offset, int(label), int(image), voice_pools)
        for offset, (label, image) in enumerate(zip(labels, images))
    ]
    chunk = {name: np.stack([sample[name] for sample in samples]) for name in samples[0]}
    raw_imu, raw_audio = chunk.pop("raw_imu"), chunk.pop("raw_audio_8k")
    chunk["imu"] = imu_tensors(raw_imu, INPUT_SPEC.imu_rate_hz).numpy().astype(np.float16)
    chunk["audio"] = audio_tensors(audio_at_model_rate(raw_audio), INPUT_SPEC.audio_rate_hz).numpy().astype(np.float16)
    if split == "test":  # the sensor simulator replays test; other splits keep tensors only
        chunk.update(raw_imu=raw_imu, raw_audio_8k=raw_audio)
    return chunk


def _make_sample(context: _Context, split: str, index: int, label: int, image: int, voice_pools) -> dict:
    config = context.config
    severity = _sample_rng(config, split, _Stream.SEVERITY, index).uniform(size=3).astype(np.float32)

    frame = context.frames[image]
    if split == "train":
        frame = augment_frame(frame, config.augmentation, _sample_rng(config, split, _Stream.CAMERA_AUGMENT, index))
    frame = corrupt_frame(frame, severity[0], config.corruption, _sample_rng(config, split, _Stream.CAMERA_CORRUPTION, index))

    imu_rng = _sample_rng(config, split, _Stream.IMU, index)
    imu = corrupt_imu(pen_imu(context.strokes[image], config.pen, imu_rng), severity[1], config.corruption, imu_rng)

    audio_rng = _sample_rng(config, split, _Stream.AUDIO, index)
    human, synthetic = voice_pools
    pool = human if audio_rng.random() < getattr(config.human_share, split) else synthetic
    candidates = context.bank.indices(pool, label)
    clip_index = int(candidates[audio_rng.integers(len(candidates))])
    speed = audio_rng.uniform(*config.augmentation.speech_speed) if split == "train" else 1.0
    audio, snr_db = speech_window(context.bank.clips[clip_index], severity[2], config.corruption, config.levels,
                                  audio_rng, speed)
    return {
        "camera_frames": frame, "raw_imu": imu, "raw_audio_8k": audio,
        "camera_severity": severity[0], "imu_severity": severity[1], "audio_severity": severity[2],
        "audio_snr_db": np.float32(snr_db), "clip_index": np.int64(clip_index),
        "voice_index": np.int64(context.bank.voice_index[clip_index]),
    }


@contextmanager
def _pool(workers: int, context: _Context):
    """A pool of `workers` spawned processes holding `context`, or None to work in this process."""
    _set_context(context)
    # Spawned workers re-import the main script; a script read from stdin cannot be, and its
    # workers would die and be replaced forever, so such callers build in this process.
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    if workers <= 1 or (main_file is not None and not os.path.exists(main_file)):
        # One BLAS thread here too, as in the workers and the nodes: OpenBLAS rounds a product
        # differently with more threads, and a sample's tensors must not depend on who built it.
        with threadpool_limits(limits=1, user_api="blas"):
            yield None
        return
    # One BLAS/OpenMP thread per worker: the workers are the parallelism.
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_set_context, initargs=(context,))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    with pool:
        yield pool


def _ordered_map(pool, function, items: list, description: str, unit: str, weights: list[int] | None = None) -> list:
    """function over items (in the pool if any), results in order, with a progress bar counting `unit`s."""
    weights = weights or [1] * len(items)
    mapped = pool.imap(function, items) if pool is not None else map(function, items)
    results = []
    with tqdm(total=sum(weights), desc=description, unit=unit) as progress:
        for result, weight in zip(mapped, weights):
            results.append(result)
            progress.update(weight)
    return results


def audio_at_model_rate(raw_audio_8k: np.ndarray) -> np.ndarray:
    """Stored int16 8 kHz windows -> the float32 16 kHz signal a microphone node would publish."""
    return resample_audio(raw_audio_8k, CLIP_RATE_HZ).astype(np.float32)
