"""numpy -> ROS sensor messages: Image, Imu, AudioChunk and BatteryState with proper headers.

Kept apart from `decode` so a publisher (sensor_sim) never imports the preprocessing stack.
"""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import BatteryState, Image, Imu

from sentryfuse.msg import AudioChunk


def image_to_msg(image: np.ndarray, stamp, frame_id: str) -> Image:
    """uint8 HxW (mono8) or HxWx3 (rgb8) array -> Image."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected uint8 HxW or HxWx3, got {image.dtype} {image.shape}")
    image = np.ascontiguousarray(image)
    msg = Image(height=image.shape[0], width=image.shape[1], encoding="mono8" if image.ndim == 2 else "rgb8")
    msg.step = image.strides[0]
    msg.data = image.tobytes()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def imu_to_msg(sample: np.ndarray, stamp, frame_id: str) -> Imu:
    """(6,) [ax ay az gx gy gz] -> Imu with orientation marked unknown (covariance[0] = -1)."""
    ax, ay, az, gx, gy, gz = (float(v) for v in sample)
    msg = Imu()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = ax, ay, az
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = gx, gy, gz
    msg.orientation_covariance[0] = -1.0
    return msg


def audio_to_msg(samples: np.ndarray, sample_rate: int, stamp, frame_id: str) -> AudioChunk:
    """Mono float32 samples -> AudioChunk (stamp = time of the first sample)."""
    msg = AudioChunk(sample_rate=int(sample_rate), channels=1)
    # array.array is rclpy's native float32[] type: ~70x faster to assign than a numpy array.
    msg.samples = array.array("f", np.ascontiguousarray(samples, dtype=np.float32).tobytes())
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
