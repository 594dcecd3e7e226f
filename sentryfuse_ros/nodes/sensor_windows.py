"""What the inference node remembers of each sensor: the newest camera frame and sliding IMU and
audio windows, with their header stamps. No rclpy: the node feeds decoded arrays in.

Memory is bounded whatever the sensor rates: one frame, at most `IMU_BUFFER_FACTOR` IMU windows
of samples, and one audio window of samples. Stamps must arrive in order (the node's stamp
check rejects the rest before they get here).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from sentryfuse_ros.data.preprocess import InvalidInput, audio_tensor, image_tensor, imu_tensor
from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec
from sentryfuse_ros.modalities import MODALITIES

NS_PER_S = 1_000_000_000
IMU_BUFFER_FACTOR = 4  # samples kept = 4 x the model's window, so a 400 Hz IMU still fills it
# A pause longer than this many median sample intervals (and at least IMU_MIN_GAP_S) splits the
# IMU stream: the model's window must be one contiguous recording, never resampled across a dropout.
IMU_GAP_INTERVALS = 5.0
IMU_MIN_GAP_S = 0.05
# A rate measured from stamps within this fraction of the model's IMU rate is the nominal rate
# plus stamp jitter: resampling 99.9 -> 100 Hz changes nothing but would design a new
# thousands-of-taps filter for every slightly different ratio, milliseconds per prediction.
IMU_RATE_JITTER = 0.02


@dataclass
class Snapshot:
    """Model inputs built from the windows, and what they came from."""

    inputs: dict[str, torch.Tensor]  # name -> (1, ...) tensor, only modalities used
    stamp_ns: int  # stamp of the newest message used
    frame_id: str  # frame of that message
    skipped: dict[str, str] = field(default_factory=dict)  # requested but not used: reason


class SensorWindows:
    def __init__(self, spec: InputSpec = INPUT_SPEC, min_fill: float = 0.5):
        self.spec = spec
        self.min_fill = min_fill  # fraction of the IMU/audio window that must be covered
        self._image: tuple[int, str, np.ndarray] | None = None
        self._imu: deque[tuple[int, np.ndarray]] = deque(maxlen=IMU_BUFFER_FACTOR * spec.imu_window_samples)
        self._imu_frame = ""
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_rate = 0
        self._audio_stamp_ns = 0  # stamp of the newest chunk's first sample
        self._audio_frame = ""

    def clear(self) -> None:
        self.__init__(self.spec, self.min_fill)

    def add_image(self, stamp_ns: int, frame_id: str, image: np.ndarray) -> None:
        self._image = (stamp_ns, frame_id, image)

    def add_imu(self, stamp_ns: int, frame_id: str, sample: np.ndarray) -> None:
        self._imu.append((stamp_ns, sample))
        self._imu_frame = frame_id

    def add_audio(self, stamp_ns: int, frame_id: str, samples: np.ndarray, sample_rate: int) -> None:
        if sample_rate != self._audio_rate:  # a new stream: old samples would be played at the wrong speed
            self._audio, self._audio_rate = np.zeros(0, dtype=np.float32), sample_rate
        keep = int(round(self.spec.audio_window_s * sample_rate))
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])[-keep:]
        self._audio_stamp_ns, self._audio_frame = stamp_ns, frame_id

    def newest_stamp_ns(self, modality: str) -> int | None:
        if modality == "camera":
            return self._image[0] if self._image else None
        if modality == "imu":
            return self._imu[-1][0] if self._imu else None
        if modality == "audio":
            return self._audio_stamp_ns if self._audio.size else None
        raise ValueError(f"unknown modality {modality!r}")

    def _not_ready(self, modality: str) -> str | None:
        """Why a modality cannot feed the model yet, or None."""
        if self.newest_stamp_ns(modality) is None:
            return "no data yet"
        if modality == "imu":
            stamps = [stamp for stamp, _ in self._imu_window_samples()]
            covered_s = (stamps[-1] - stamps[0]) / NS_PER_S
            if len(stamps) < 2 or covered_s < self.min_fill * self.spec.imu_window_s:
                return f"IMU window {covered_s:.2f} s < {self.min_fill * self.spec.imu_window_s:.2f} s since the last gap"
        if modality == "audio":
            covered_s = self._audio.size / self._audio_rate
            if covered_s < self.min_fill * self.spec.audio_window_s:
                return f"audio window {covered_s:.2f} s < {self.min_fill * self.spec.audio_window_s:.2f} s"
        return None

    def _imu_window_samples(self) -> list[tuple[int, np.ndarray]]:
        """(stamp, sample) of the newest window, cut at the last gap in the stream."""
        newest = self._imu[-1][0]
        start = newest - int(self.spec.imu_window_s * NS_PER_S)
        stamped = [(stamp, sample) for stamp, sample in self._imu if stamp > start]
        if len(stamped) < 3:
            return stamped
        intervals = np.diff([stamp for stamp, _ in stamped])
        gap_ns = max(IMU_GAP_INTERVALS * float(np.median(intervals)), IMU_MIN_GAP_S * NS_PER_S)
        gaps = np.nonzero(intervals > gap_ns)[0]
        return stamped[gaps[-1] + 1 :] if gaps.size else stamped

    def _imu_window(self) -> tuple[np.ndarray, float]:
        """Samples of the newest contiguous IMU window and their rate measured from the stamps."""
        stamped = self._imu_window_samples()
        span_s = (stamped[-1][0] - stamped[0][0]) / NS_PER_S
        rate_hz = (len(stamped) - 1) / span_s if span_s > 0 and len(stamped) > 1 else self.spec.imu_rate_hz
        if abs(rate_hz / self.spec.imu_rate_hz - 1.0) <= IMU_RATE_JITTER:
            rate_hz = self.spec.imu_rate_hz
        return np.stack([sample for _, sample in stamped]), rate_hz

    def _tensor(self, modality: str) -> torch.Tensor:
        if modality == "camera":
            return image_tensor(self._image[2])
        if modality == "imu":
            return imu_tensor(*self._imu_window())
        return audio_tensor(self._audio, self._audio_rate)

    def _frame(self, modality: str) -> str:
        return {"camera": self._image[1] if self._image else "", "imu": self._imu_frame, "audio": self._audio_frame}[modality]

    def snapshot(self, modalities, max_skew_s: float) -> Snapshot:
        """Tensors for the requested modalities that are ready and within `max_skew_s` of the
        newest of them; the others are listed in `skipped` with the reason."""
        skipped, ready = {}, []
        for name in (m for m in MODALITIES if m in modalities):
            reason = self._not_ready(name)
            if reason:
                skipped[name] = reason
            else:
                ready.append(name)
        if not ready:
            return Snapshot({}, 0, "", skipped)
        newest = max(ready, key=self.newest_stamp_ns)
        newest_ns = self.newest_stamp_ns(newest)
        used = []
        for name in ready:
            lag_s = (newest_ns - self.newest_stamp_ns(name)) / NS_PER_S
            if lag_s > max_skew_s:
                skipped[name] = f"{lag_s:.2f} s behind {newest} (tolerance {max_skew_s:.2f} s)"
            else:
                used.append(name)
        inputs = {}
        for name in used:
            try:
                inputs[name] = self._tensor(name).unsqueeze(0)
            except InvalidInput as error:  # e.g. a window the preprocessing cannot use
                skipped[name] = str(error)
        if not inputs:
            return Snapshot({}, 0, "", skipped)
        newest = max(inputs, key=self.newest_stamp_ns)
        return Snapshot(inputs, self.newest_stamp_ns(newest), self._frame(newest), skipped)
