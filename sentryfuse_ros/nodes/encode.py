"""numpy -> ROS sensor messages: Image, Imu, AudioChunk and BatteryState with proper headers.

Kept apart from `decode` so a publisher (sensor_sim) never imports the preprocessing stack.
"""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import BatteryState, Image, Imu

from sentryfuse.msg import AudioChunk


IMAGE_ENCODINGS = ("mono8", "bgr8", "rgb8")  # what camera_frame makes and image_to_msg labels


def image_to_msg(image: np.ndarray, stamp, frame_id: str, encoding: str = "") -> Image:
    """uint8 HxW (mono8) or HxWx3 (rgb8, or `encoding` bgr8 for data in that order) array -> Image."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected uint8 HxW or HxWx3, got {image.dtype} {image.shape}")
    encoding = encoding or ("mono8" if image.ndim == 2 else "rgb8")
    if (encoding == "mono8") != (image.ndim == 2) or encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"encoding {encoding!r} does not fit a {image.shape} image (one of {IMAGE_ENCODINGS})")
    image = np.ascontiguousarray(image)
    msg = Image(height=image.shape[0], width=image.shape[1], encoding=encoding)
    msg.step = image.strides[0]
    msg.data = image.tobytes()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def camera_frame(image: np.ndarray, width: int = 0, height: int = 0, encoding: str = "mono8") -> np.ndarray:
    """A grayscale uint8 sample image as a `width` x `height` camera would deliver it (0 x 0: as it is).

    The image is scaled to a square of the frame's longer side (INTER_AREA) and the frame is its
    centre: the inverse of the preprocessing, which pads a frame to a square with its border
    median and shrinks it with INTER_AREA, so the digit comes back at its size, less the rows
    (or columns) the crop cut off. bgr8 and rgb8 repeat the gray value in every channel.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"encoding must be one of {IMAGE_ENCODINGS}, got {encoding!r}")
    if (width > 0) != (height > 0):
        raise ValueError(f"give both width and height, or neither; got {width} x {height}")
    frame = np.asarray(image, dtype=np.uint8)
    if width > 0 and (width, height) != (frame.shape[1], frame.shape[0]):
        import cv2  # only a resizing publisher needs it

        side = max(width, height)
        square = cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)
        top, left = (side - height) // 2, (side - width) // 2
        frame = square[top:top + height, left:left + width]
    if encoding != "mono8":
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return np.ascontiguousarray(frame)


def imu_to_msg(sample: np.ndarray, stamp, frame_id: str) -> Imu:
    """(6,) [ax ay az gx gy gz] -> Imu with orientation marked unknown (covariance[0] = -1)."""
    ax, ay, az, gx, gy, gz = (float(v) for v in sample)
    msg = Imu()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = ax, ay, az
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = gx, gy, gz
    msg.orientation_covariance[0] = -1.0
    return msg


def audio_to_msg(samples: np.ndarray, sample_rate: int, stamp, frame_id: str, channels: int = 1) -> AudioChunk:
    """Mono float32 samples -> AudioChunk (stamp = time of the first sample); `channels` > 1
    interleaves that many copies of every sample."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    msg = AudioChunk(sample_rate=int(sample_rate), channels=int(channels))
    samples = np.asarray(samples, dtype=np.float32)
    if channels > 1:
        samples = np.repeat(samples, channels)
    # array.array is rclpy's native float32[] type: ~70x faster to assign than a numpy array.
    msg.samples = array.array("f", np.ascontiguousarray(samples).tobytes())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def battery_to_msg(percentage: float, charging: bool, stamp, frame_id: str) -> BatteryState:
    """BatteryState with `percentage` verbatim; voltage, charge and capacity unmeasured (NaN)."""
    nan = float("nan")
    msg = BatteryState(
        voltage=nan, temperature=nan, current=nan, charge=nan, capacity=nan, design_capacity=nan,
        percentage=float(percentage), present=True,
        power_supply_status=(BatteryState.POWER_SUPPLY_STATUS_CHARGING if charging
                             else BatteryState.POWER_SUPPLY_STATUS_DISCHARGING),
    )
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg
