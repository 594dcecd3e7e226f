"""What a task's data looks like: the contract between preprocessing, dataset, model and nodes.

Preprocessing (sentryfuse_ros.data.preprocess) turns any sensor signal into these tensors, for
dataset samples and ROS messages alike. A checkpoint stores its task's spec in its JSON (inside
the model config), so a node serves whatever task the weights were trained for: the digits
benchmark is `INPUT_SPEC`, a dataset cut from a user's bag carries the spec measured from the bag.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from sentryfuse_ros.modalities import CLASS_NAMES, MODALITIES, canonical_subset

# The six values of a sensor_msgs/Imu message, in this order: linear acceleration (m/s^2), then
# angular velocity (rad/s). A task names the ones its IMU provides.
IMU_AXES: tuple[str, ...] = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")
IMAGE_CHANNELS = (1, 3)  # grayscale or RGB


@dataclass(frozen=True)
class InputSpec:
    # The modalities the task has (canonical order) and the names of its classes.
    modalities: tuple[str, ...] = MODALITIES
    class_names: tuple[str, ...] = CLASS_NAMES
    # Camera: grayscale (1) or RGB (3), resized to image_size x image_size -> (channels, S, S).
    image_size: int = 28
    image_channels: int = 1
    # IMU: the named axes (IMU_AXES) resampled to imu_rate_hz, the newest imu_window_samples kept
    # -> tensor (len(imu_axes), imu_window_samples).
    imu_rate_hz: float = 100.0
    imu_window_samples: int = 200
    imu_axes: tuple[str, ...] = IMU_AXES
    # Audio: mono, resampled to audio_rate_hz, the newest audio_window_s seconds ->
    # log-mel spectrogram tensor (audio_n_mels, audio_frames).
    audio_rate_hz: int = 16000
    audio_window_s: float = 1.0
    audio_n_fft: int = 400
    audio_hop: int = 160
    audio_n_mels: int = 40

    def __post_init__(self):
        problem = spec_problem(self)
        if problem:
            raise ValueError(f"invalid input spec: {problem}")

    @property
    def imu_channels(self) -> int:
        return len(self.imu_axes)

    @property
    def imu_axis_index(self) -> tuple[int, ...]:
        """Columns of an [accel xyz, gyro xyz] row that this task uses."""
        return tuple(IMU_AXES.index(axis) for axis in self.imu_axes)

    @property
    def audio_window_samples(self) -> int:
        return int(round(self.audio_rate_hz * self.audio_window_s))

    @property
    def audio_frames(self) -> int:
        return 1 + self.audio_window_samples // self.audio_hop

    @property
    def imu_window_s(self) -> float:
        return self.imu_window_samples / self.imu_rate_hz

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> InputSpec:
        """Inverse of to_dict (JSON lists become tuples); unknown or invalid fields raise ValueError."""
        if not isinstance(values, dict):
            raise ValueError(f"input spec must be a mapping, got {type(values).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown input spec fields {sorted(unknown)}")
        values = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"malformed input spec: {error}") from error


def spec_problem(spec: InputSpec) -> str | None:
    """Why `spec` cannot describe a task, or None."""
    try:
        if canonical_subset(spec.modalities) != tuple(spec.modalities):
            return f"modalities {spec.modalities} must be in the order {MODALITIES}, without repeats"
    except ValueError as error:
        return str(error)
    names = spec.class_names
    if len(names) < 2 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        return f"class_names must be at least two distinct non-empty strings, got {names!r}"
    if spec.image_channels not in IMAGE_CHANNELS:
        return f"image_channels must be one of {IMAGE_CHANNELS}, got {spec.image_channels!r}"
    if not spec.imu_axes or len(set(spec.imu_axes)) != len(spec.imu_axes) or set(spec.imu_axes) - set(IMU_AXES):
        return f"imu_axes must be distinct names from {IMU_AXES}, got {spec.imu_axes!r}"
    if tuple(a for a in IMU_AXES if a in spec.imu_axes) != tuple(spec.imu_axes):
        return f"imu_axes must keep the order {IMU_AXES}, got {spec.imu_axes!r}"
    positive = {"image_size": spec.image_size, "imu_rate_hz": spec.imu_rate_hz,
                "imu_window_samples": spec.imu_window_samples, "audio_rate_hz": spec.audio_rate_hz,
                "audio_window_s": spec.audio_window_s, "audio_n_fft": spec.audio_n_fft,
                "audio_hop": spec.audio_hop, "audio_n_mels": spec.audio_n_mels}
    for name, value in positive.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            return f"{name} must be a positive number, got {value!r}"
    return None


def describe_task(spec: InputSpec) -> str:
    """One line a user can check against their sensors."""
    parts = [f"{len(spec.class_names)} classes ({', '.join(spec.class_names[:6])}{', ...' if spec.n_classes > 6 else ''})"]
    if "camera" in spec.modalities:
        parts.append(f"camera {'RGB' if spec.image_channels == 3 else 'grayscale'} {spec.image_size}x{spec.image_size}")
    if "imu" in spec.modalities:
        parts.append(f"IMU {', '.join(spec.imu_axes)} at {spec.imu_rate_hz:g} Hz, {spec.imu_window_s:g} s window")
    if "audio" in spec.modalities:
        parts.append(f"audio {spec.audio_rate_hz} Hz, {spec.audio_window_s:g} s window")
    return "; ".join(parts)


def spec_fingerprint(spec: InputSpec) -> str:
    """A short name of the task (every spec field): two models with the same fingerprint take the
    same tensors and name the same classes, so one can answer for the other (offload)."""
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# The tri-modal digits benchmark (DATA.md).
INPUT_SPEC = InputSpec()
