"""ROS sensor messages -> numpy, validated: what a node reads from Image, CompressedImage, Imu
and AudioChunk.

Every reader raises `preprocess.InvalidInput` with a human-readable reason for a malformed
message. Image decoding and its checks (step, size, encoding) are data.preprocess's, so a
message and a dataset sample go through the same code.
"""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image, Imu

from sentryfuse.msg import AudioChunk
from sentryfuse_ros.data.preprocess import InvalidInput, image_from_buffer, image_pixels
from sentryfuse_ros.data.spec import IMU_AXES

# What a liveness check needs of an IMU: an accelerometer (a gyroscope is optional).
ACCEL_AXES = IMU_AXES[:3]


def image_from_msg(msg: Image, channels: int = 1) -> np.ndarray:
    """Float32 image, grayscale (channels=1) or RGB (3), as data.preprocess.image_from_buffer decodes it."""
    return image_from_buffer(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian), channels)


def check_image_msg(msg: Image) -> None:
    """InvalidInput if the frame is malformed; converts no pixel (what a liveness check needs)."""
    image_pixels(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))


def image_from_compressed_msg(msg: CompressedImage, channels: int = 1) -> np.ndarray:
    """Decode a JPEG/PNG CompressedImage, then normalise it exactly like a raw mono8 (or bgr8) Image."""
    if len(msg.data) == 0:
        raise InvalidInput("compressed image has no data")
    flag = cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE
    pixels = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), flag)
    if pixels is None:
        raise InvalidInput(f"compressed image (format {msg.format!r}, {len(msg.data)} bytes) does not decode")
    height, width = pixels.shape[:2]
    encoding = "bgr8" if channels == 3 else "mono8"
    return image_from_buffer(pixels, height, width, encoding, pixels.strides[0], channels=channels)


def imu_sample_from_msg(msg: Imu, axes: tuple[str, ...] = IMU_AXES) -> np.ndarray:
    """(6,) float32 [ax ay az gx gy gz] in m/s^2 and rad/s; orientation is not used. The `axes` a
    consumer uses must be provided (covariance[0] != -1, the ROS convention); whatever is provided
    must be finite; a field not provided reads as zeros."""
    values = np.zeros(len(IMU_AXES), dtype=np.float64)
    for field, covariance, vector, offset in (
        ("linear acceleration", msg.linear_acceleration_covariance, msg.linear_acceleration, 0),
        ("angular velocity", msg.angular_velocity_covariance, msg.angular_velocity, 3),
    ):
        if covariance[0] == -1:
            needed = [axis for axis in IMU_AXES[offset : offset + 3] if axis in axes]
            if needed:
                raise InvalidInput(f"IMU reports no {field} (covariance[0] = -1), but {', '.join(needed)} are used")
            continue
        values[offset : offset + 3] = (vector.x, vector.y, vector.z)
    finite = np.isfinite(values)
    if not finite.all():
        raise InvalidInput(f"IMU has non-finite {', '.join(np.asarray(IMU_AXES)[~finite])}")
    return values.astype(np.float32)


def audio_from_msg(msg: AudioChunk, expected_rate: int = 0) -> np.ndarray:
    """Channel 0 as float32; `expected_rate` > 0 rejects any other sample rate.

    rclpy gives the float32[] field as an array.array: mono audio is returned as a read-only
    view of the message's buffer (whoever keeps it copies it, as SensorWindows does into its
    window), other channel counts as one copy of the strided channel-0 view. Only channel 0 is
    checked for NaN or Inf: the others are never used.
    """
    if msg.sample_rate == 0:
        raise InvalidInput("audio sample_rate is 0")
    if expected_rate and msg.sample_rate != expected_rate:
        raise InvalidInput(f"audio sample_rate {msg.sample_rate} Hz, expected {expected_rate} Hz")
    if msg.channels == 0:
        raise InvalidInput("audio channels is 0")
    samples = np.frombuffer(msg.samples, dtype=np.float32)
    if samples.size == 0:
        raise InvalidInput("audio chunk has no samples")
    if samples.size % msg.channels:
        raise InvalidInput(f"{samples.size} audio samples is not a multiple of {msg.channels} channels")
    channel = np.ascontiguousarray(samples[:: msg.channels])
    channel.flags.writeable = False  # a view of the message when mono
    if not np.isfinite(channel).all():
        raise InvalidInput("audio samples contain NaN or Inf")
    return channel
