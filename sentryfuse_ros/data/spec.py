"""Shapes and rates of the model's inputs: the contract between preprocessing, dataset and model.

Preprocessing (sentryfuse_ros.data.preprocess) turns any sensor signal into these tensors,
for dataset samples and ROS messages alike.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    # Camera: grayscale, resized to image_size x image_size -> tensor (1, image_size, image_size).
    image_size: int = 28
    # IMU: 6 channels (accel xyz m/s^2, gyro xyz rad/s) resampled to imu_rate_hz,
    # the newest imu_window_samples kept -> tensor (6, imu_window_samples).
    imu_rate_hz: float = 100.0
    imu_window_samples: int = 200
    imu_channels: int = 6
    # Audio: mono, resampled to audio_rate_hz, the newest audio_window_s seconds ->
    # log-mel spectrogram tensor (audio_n_mels, audio_frames).
    audio_rate_hz: int = 16000
    audio_window_s: float = 1.0
    audio_n_fft: int = 400
    audio_hop: int = 160
    audio_n_mels: int = 40

    @property
    def audio_window_samples(self) -> int:
        return int(round(self.audio_rate_hz * self.audio_window_s))

    @property
    def audio_frames(self) -> int:
        return 1 + self.audio_window_samples // self.audio_hop

    @property
    def imu_window_s(self) -> float:
        return self.imu_window_samples / self.imu_rate_hz


INPUT_SPEC = InputSpec()
