"""The bank of clean spoken-digit clips every audio sample is drawn from, cached in the sources
folder because synthesising it is the slowest step of the build.

Train clips come in pre-baked variants (sox pitch shifts for the human voices, and every clip
once more through the GSM codec, since two held-out voices are GSM recordings); val/test clips
are the recordings and syntheses as they are.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sentryfuse_ros.data.audio_clips import CLIP_RATE_HZ, apply_sox_effect, loudest_segment, read_recording, synthesise, trim_silence
from sentryfuse_ros.data.config import ClipVariants
from sentryfuse_ros.data.sources import extracted_root
from sentryfuse_ros.data.voices import Voice

_BANK_FORMAT = 1


@dataclass
class ClipBank:
    clips: list[np.ndarray]  # float32 mono at CLIP_RATE_HZ
    digits: np.ndarray  # (K,) int
    voice_index: np.ndarray  # (K,) index into `voices`
    voices: tuple[Voice, ...]

    def indices(self, voice_indices: np.ndarray, digit: int) -> np.ndarray:
        return np.flatnonzero((self.digits == digit) & np.isin(self.voice_index, voice_indices))


def load_or_build_clip_bank(
    sources_dir: Path, voices: tuple[Voice, ...], variants: ClipVariants, tool_versions: dict, workers: int
) -> ClipBank:
    """The bank for these voices and variants, built once and then read from the sources folder.

    `tool_versions` (source packages, espeak-ng, sox) is part of the cache key, so an upgraded
    package or synthesiser rebuilds the bank instead of reusing stale clips.
    """
    key = hashlib.sha256(
        json.dumps([_BANK_FORMAT, [asdict(v) for v in voices], asdict(variants), tool_versions], sort_keys=True).encode()
    ).hexdigest()[:16]
    path = sources_dir / f"clip-bank-{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            clips = np.split(stored["samples"], stored["ends"][:-1])
            return ClipBank(clips, stored["digits"], stored["voice_index"], voices)
    bank = _build(sources_dir, voices, variants, workers)
    ends = np.cumsum([len(clip) for clip in bank.clips])
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, samples=np.concatenate(bank.clips), ends=ends, digits=bank.digits, voice_index=bank.voice_index)
    temporary.rename(path)
    return bank


def _build(sources_dir: Path, voices: tuple[Voice, ...], variants: ClipVariants, workers: int) -> ClipBank:
    limit = int(variants.max_clip_s * CLIP_RATE_HZ)
    jobs = [(index, digit) for index in range(len(voices)) for digit in range(10)]

    def clean_clip(job):
        voice, digit = voices[job[0]], job[1]
        if voice.is_synthetic:
            clip = synthesise(voice, digit)
        else:
            clip = read_recording(extracted_root(sources_dir, voice.package) / voice.digits_dir / f"{digit}.{voice.extension}")
        return loudest_segment(trim_silence(clip), limit)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        clips = list(tqdm(pool.map(clean_clip, jobs), total=len(jobs), desc="voices", unit="clip", leave=False))
    voice_index, digits = [job[0] for job in jobs], [job[1] for job in jobs]

    def add_variants(indices: list[int], new_clips: list[np.ndarray]) -> None:
        for index, clip in zip(indices, new_clips):
            clips.append(loudest_segment(clip, limit))
            voice_index.append(voice_index[index])
            digits.append(digits[index])

    human_train = [i for i, v in enumerate(voice_index) if voices[v].split == "train" and not voices[v].is_synthetic]
    for cents in variants.human_pitch_shifts_cents:
        add_variants(human_train, apply_sox_effect([clips[i] for i in human_train], ["pitch", str(cents)]))
    if variants.gsm_round_trip:
        # Every train clip made so far (recorded, pitch-shifted, synthetic) once more through the codec.
        train = [i for i, v in enumerate(voice_index) if voices[v].split == "train"]
        add_variants(train, apply_sox_effect([clips[i] for i in train], [], gsm_round_trip=True))
    return ClipBank(clips, np.asarray(digits), np.asarray(voice_index), voices)
