"""Clean spoken-digit clips at the telephone rate: read the recordings (wav or gsm, through sox),
synthesise espeak-ng voices, trim silence, and apply sox effects (pitch, gsm codec) to many
clips in one call.

Every clip is float32 mono at CLIP_RATE_HZ, the rate of the Asterisk recordings, so human and
synthetic voices share one bandwidth.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from sentryfuse_ros.data.preprocess import polyphase_resample
from sentryfuse_ros.data.voices import DIGIT_WORDS, Voice

CLIP_RATE_HZ = 8000
_RAW_FLOAT = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1"]


class AudioToolError(RuntimeError):
    """sox or espeak-ng is missing or failed."""


def read_recording(path: Path) -> np.ndarray:
    """A wav or gsm recording -> float32 at CLIP_RATE_HZ (sox does the decoding and rate change)."""
    return _sox([str(path), *_RAW_FLOAT, "-r", str(CLIP_RATE_HZ), "-"], b"")


def synthesise(voice: Voice, digit: int) -> np.ndarray:
    """espeak-ng saying `digit` in the voice's language -> float32 at CLIP_RATE_HZ."""
    _require("espeak-ng")
    command = ["espeak-ng", *voice.espeak_arguments(), "--stdout", DIGIT_WORDS[voice.language][digit]]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0 or not result.stdout:
        raise AudioToolError(f"`{' '.join(command)}` failed: {result.stderr.decode(errors='replace').strip()}")
    with wave.open(io.BytesIO(result.stdout)) as wav:
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    # espeak-ng streams a header with an unknown length; the sample data is 16-bit mono.
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return polyphase_resample(samples, CLIP_RATE_HZ, rate).astype(np.float32)


def trim_silence(clip: np.ndarray, threshold_db: float = 40.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing parts whose 10 ms energy is `threshold_db` below the loudest frame."""
    frame = CLIP_RATE_HZ // 100
    usable = len(clip) // frame * frame
    if usable == 0:
        return clip
    energy = (clip[:usable].astype(np.float64).reshape(-1, frame) ** 2).mean(axis=1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > -threshold_db)
    margin = int(margin_s * CLIP_RATE_HZ)
    start = max(loud[0] * frame - margin, 0)
    stop = min((loud[-1] + 1) * frame + margin, len(clip))
    return clip[start:stop]


def loudest_segment(clip: np.ndarray, limit: int) -> np.ndarray:
    """The `limit`-sample part of `clip` with the most energy (the whole clip when it is shorter)."""
    if len(clip) <= limit:
        return clip.astype(np.float32)
    energy = np.concatenate([[0.0], np.cumsum(clip.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[limit:] - energy[:-limit]))
    return clip[start : start + limit].astype(np.float32)


def apply_sox_effect(clips: list[np.ndarray], effect: list[str], gsm_round_trip: bool = False) -> list[np.ndarray]:
    """Run every clip through one sox effect chain (and optionally the GSM 06.10 codec) in one call.

    Clips are joined with 0.25 s of silence, processed, cut at the same offsets and trimmed again,
    which is far cheaper than one sox process per clip.
    """
    gap = np.zeros(CLIP_RATE_HZ // 4, dtype=np.float32)
    offsets, pieces, position = [], [], 0
    for clip in clips:
        pieces += [gap, clip]
        position += len(gap)
        offsets.append((position, position + len(clip)))
        position += len(clip)
    pieces.append(gap)
    joined = np.concatenate(pieces).astype(np.float32)
    rate = ["-r", str(CLIP_RATE_HZ)]
    processed = _sox([*_RAW_FLOAT, *rate, "-", *_RAW_FLOAT, "-", *effect], joined.tobytes()) if effect else joined
    if gsm_round_trip:
        encoded = _sox_bytes([*_RAW_FLOAT, *rate, "-", "-t", "gsm", "-"], processed.tobytes())
        processed = _sox(["-t", "gsm", *rate, "-c", "1", "-", *_RAW_FLOAT, "-"], encoded)
    half_gap = len(gap) // 2
    return [trim_silence(processed[start - half_gap : stop + half_gap]) for start, stop in offsets]


def tool_versions() -> dict[str, str]:
    """Versions of the programs that make the clips (part of the clip bank's cache key)."""
    versions = {}
    for tool in ("espeak-ng", "sox"):
        _require(tool)
        result = subprocess.run([tool, "--version"], capture_output=True, text=True)
        versions[tool] = (result.stdout or result.stderr).strip()
    return versions


def _sox(arguments: list[str], stdin: bytes) -> np.ndarray:
    return np.frombuffer(_sox_bytes(arguments, stdin), dtype=np.float32).copy()


def _sox_bytes(arguments: list[str], stdin: bytes) -> bytes:
    _require("sox")
    # -D: no dither, so the output is the same bytes on every run.
    command = ["sox", "-D", "-V1", *arguments]
    result = subprocess.run(command, input=stdin, capture_output=True)
    if result.returncode != 0:
        raise AudioToolError(f"`{' '.join(command)}` failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise AudioToolError(
            f"{tool} is not installed; run `bash scripts/setup.sh` (it installs the packages in scripts/apt-packages.txt)"
        )
