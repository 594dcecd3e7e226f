"""What the inference node remembers of each sensor: the newest camera frame and sliding IMU and
audio windows, with their header stamps. No rclpy: the node feeds decoded arrays in.

Memory is bounded whatever the sensor rates: one frame, at most `IMU_BUFFER_FACTOR` IMU windows
of samples in preallocated buffers, and one audio window at the model's rate. Stamps must arrive
in order (the node's stamp check rejects the rest before they get here).

A snapshot works on what arrived since the last one: the camera frame is preprocessed once,
audio log-mel frames are computed once (data.streaming_audio), and the IMU window is found with
array operations on the stamps. Tensors equal data.preprocess's for the same window (IMU, camera,
and audio at the model's rate bit for bit; resampled audio see data.streaming_audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sentryfuse_ros.data.preprocess import InvalidInput, image_tensor, imu_tensor
from sentryfuse_ros.data.ring_buffer import SlidingBuffer
from sentryfuse_ros.data.spec import IMU_AXES, INPUT_SPEC, InputSpec
from sentryfuse_ros.data.streaming_audio import AudioStream
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.cpu_account import CpuAccount
from sentryfuse_ros.nodes.stamps import NS_PER_S

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

    inputs: dict[str, torch.Tensor]  # name -> (1, ...) tensor, only modalities used; read-only (shared with later snapshots)
    stamp_ns: int  # stamp of the newest message used
    frame_id: str  # frame of that message
    skipped: dict[str, str] = field(default_factory=dict)  # requested but not used: reason


class SensorWindows:
    def __init__(self, spec: InputSpec = INPUT_SPEC, min_fill: float = 0.5):
        self.spec = spec
        self.min_fill = min_fill  # fraction of the IMU/audio window that must be covered
        self._image: tuple[int, str, np.ndarray] | None = None
        self._image_tensor: torch.Tensor | str | None = None  # the newest frame's tensor or why it has none
        capacity = IMU_BUFFER_FACTOR * spec.imu_window_samples
        self._imu_stamps = SlidingBuffer(capacity, dtype=np.int64)
        self._imu_samples = SlidingBuffer(capacity, (spec.imu_channels,), np.float32)
        # All six axes: the row is kept as is (no copy through fancy indexing).
        self._imu_axes = slice(None) if spec.imu_channels == len(IMU_AXES) else list(spec.imu_axis_index)
        self._imu_frame = ""
        self._imu_rows_found: tuple[np.ndarray, np.ndarray] | None = None  # _imu_rows() until the next sample
        self._audio: AudioStream | None = None
        self._audio_stamp_ns = 0  # stamp of the newest chunk's first sample
        self._audio_frame = ""

    def clear(self) -> None:
        self.__init__(self.spec, self.min_fill)

    def forget(self, modality: str) -> None:
        """Drop one modality's data (the node stopped consuming it: when it comes back, its
        window starts empty instead of holding data from before the gap)."""
        fresh = SensorWindows(self.spec, self.min_fill)
        fields = {"camera": ("_image", "_image_tensor"),
                  "imu": ("_imu_stamps", "_imu_samples", "_imu_frame", "_imu_rows_found"),
                  "audio": ("_audio", "_audio_stamp_ns", "_audio_frame")}[modality]
        for name in fields:
            setattr(self, name, getattr(fresh, name))

    def add_image(self, stamp_ns: int, frame_id: str, image: np.ndarray) -> None:
        self._image = (stamp_ns, frame_id, image)
        self._image_tensor = None

    def add_imu(self, stamp_ns: int, frame_id: str, sample: np.ndarray) -> None:
        """One (6,) [accel xyz, gyro xyz] row; the task's axes are kept."""
        self._imu_stamps.append(stamp_ns)
        self._imu_samples.append(sample[self._imu_axes])
        self._imu_frame = frame_id
        self._imu_rows_found = None

    def add_imu_many(self, stamps_ns: np.ndarray, frame_id: str, samples: np.ndarray) -> None:
        """N IMU messages at once (a drained queue), as N add_imu calls would add them: (N,) int64
        stamps in order and their (N, 6) [accel xyz, gyro xyz] rows."""
        stamps_ns, samples = np.asarray(stamps_ns, dtype=np.int64), np.asarray(samples, dtype=np.float32)
        if stamps_ns.ndim != 1 or samples.shape != (len(stamps_ns), len(IMU_AXES)):
            raise ValueError(
                f"expected (N,) stamps and (N, {len(IMU_AXES)}) samples, got {stamps_ns.shape} and {samples.shape}"
            )
        if len(stamps_ns) == 0:
            return
        self._imu_stamps.extend(stamps_ns)
        self._imu_samples.extend(samples[:, self._imu_axes])
        self._imu_frame = frame_id
        self._imu_rows_found = None

    def add_audio(self, stamp_ns: int, frame_id: str, samples: np.ndarray, sample_rate: int) -> None:
        if self._audio is None or sample_rate != self._audio.sample_rate:
            self._audio = AudioStream(sample_rate, self.spec)  # a new stream: old samples would be played at the wrong speed
        self._audio.add(samples)
        self._audio_stamp_ns, self._audio_frame = stamp_ns, frame_id

    def newest_stamp_ns(self, modality: str) -> int | None:
        if modality == "camera":
            return self._image[0] if self._image else None
        if modality == "imu":
            return int(self._imu_stamps.view()[-1]) if len(self._imu_stamps) else None
        if modality == "audio":
            return self._audio_stamp_ns if self._audio is not None and self._audio.received else None
        raise ValueError(f"unknown modality {modality!r}")

    def ready(self, modalities) -> tuple[str, ...]:
        """Those of `modalities` that can feed the model now, canonical order (no tensor is built)."""
        return tuple(name for name in MODALITIES if name in modalities and self._not_ready(name) is None)

    def _not_ready(self, modality: str) -> str | None:
        """Why a modality cannot feed the model yet, or None."""
        if self.newest_stamp_ns(modality) is None:
            return "no data yet"
        if modality == "imu":
            stamps, _ = self._imu_rows()
            covered_s = int(stamps[-1] - stamps[0]) / NS_PER_S
            if len(stamps) < 2 or covered_s < self.min_fill * self.spec.imu_window_s:
                return f"IMU window {covered_s:.2f} s < {self.min_fill * self.spec.imu_window_s:.2f} s since the last gap"
        if modality == "audio":
            covered_s = self._audio.covered_s
            if covered_s < self.min_fill * self.spec.audio_window_s:
                return f"audio window {covered_s:.2f} s < {self.min_fill * self.spec.audio_window_s:.2f} s"
        return None

    def _imu_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Stamps and samples of the newest window, cut at the last gap in the stream: views into
        the buffers, valid until the next sample."""
        if self._imu_rows_found is None:
            stamps, samples = self._imu_stamps.view(), self._imu_samples.view()
            first = np.searchsorted(stamps, stamps[-1] - int(self.spec.imu_window_s * NS_PER_S), side="right")
            stamps, samples = stamps[first:], samples[first:]
            if len(stamps) >= 3:
                intervals = np.diff(stamps)
                gap_ns = max(IMU_GAP_INTERVALS * float(np.median(intervals)), IMU_MIN_GAP_S * NS_PER_S)
                gaps = np.flatnonzero(intervals > gap_ns)
                if gaps.size:
                    stamps, samples = stamps[gaps[-1] + 1 :], samples[gaps[-1] + 1 :]
            self._imu_rows_found = (stamps, samples)
        return self._imu_rows_found

    def _imu_window(self) -> tuple[np.ndarray, float]:
        """Samples of the newest contiguous IMU window and their rate measured from the stamps."""
        stamps, samples = self._imu_rows()
        span_s = int(stamps[-1] - stamps[0]) / NS_PER_S
        rate_hz = (len(stamps) - 1) / span_s if span_s > 0 and len(stamps) > 1 else self.spec.imu_rate_hz
        if abs(rate_hz / self.spec.imu_rate_hz - 1.0) <= IMU_RATE_JITTER:
            rate_hz = self.spec.imu_rate_hz
        return samples, rate_hz

    def _camera_tensor(self) -> torch.Tensor:
        # Built once per frame: at 10 predictions/s a 15 Hz camera's frame is often used twice.
        if self._image_tensor is None:
            try:
                self._image_tensor = image_tensor(self._image[2], spec=self.spec)
            except InvalidInput as error:
                self._image_tensor = str(error)
        if isinstance(self._image_tensor, str):
            raise InvalidInput(self._image_tensor)
        return self._image_tensor

    def _tensor(self, modality: str) -> torch.Tensor:
        if modality == "camera":
            return self._camera_tensor()
        if modality == "imu":
            return imu_tensor(*self._imu_window(), self.spec)
        return self._audio.tensor()

    def _frame(self, modality: str) -> str:
        return {"camera": self._image[1] if self._image else "", "imu": self._imu_frame, "audio": self._audio_frame}[modality]

    def snapshot(self, modalities, max_skew_s: float, cpu: CpuAccount | None = None) -> Snapshot:
        """Tensors for the requested modalities that are ready and within `max_skew_s` of the
        newest of them; the others are listed in `skipped` with the reason. `cpu` is charged the
        preprocessing of each modality ("preprocess <name>")."""
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
            started = cpu.start() if cpu else 0
            try:
                inputs[name] = self._tensor(name).unsqueeze(0)
            except InvalidInput as error:  # e.g. a window the preprocessing cannot use
                skipped[name] = str(error)
            if cpu:
                cpu.add(f"preprocess {name}", started)
        if not inputs:
            return Snapshot({}, 0, "", skipped)
        newest = max(inputs, key=self.newest_stamp_ns)
        return Snapshot(inputs, self.newest_stamp_ns(newest), self._frame(newest), skipped)
