"""The 6-axis IMU signal of a pen writing a digit, derived from the digit's own strokes.

Pen-tip path: the strokes from `strokes.digit_strokes`, scaled to a 1.5-3.5 cm digit, slanted,
and timed with the two-thirds power law of handwriting (tangential speed proportional to
curvature^(-1/3), Lacquaniti, Terzuolo & Viviani 1983), slowed at stroke starts and ends;
between strokes the pen lifts and moves with a minimum-jerk profile (Flash & Hogan 1985).
The hand's limited bandwidth is a 12 ms Gaussian smoothing.

Pen body: tilted 25-45 degrees from vertical, leaning to the writer's lower right; the wrist
follows the tip only partly and with a lag, so the pen rotates as it writes, and it rolls
slowly between the fingers (a few degrees). The IMU sits 10 cm up the barrel.

Measurement: specific force (acceleration minus gravity) and angular rate in the pen's own
frame, computed at 500 Hz, low-pass resampled to 100 Hz, plus a per-recording bias and white
noise of a consumer MEMS IMU. The paper lies flat: world z is up, x to the writer's right.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

from sentryfuse_ros.data.config import PenModel
from sentryfuse_ros.data.preprocess import polyphase_resample
from sentryfuse_ros.data.spec import INPUT_SPEC

GRAVITY_MS2 = 9.80665
_DIGIT_BOX_PX = 20.0  # the digit's height in frame pixels (MNIST framing)


def pen_imu(strokes: list[np.ndarray], model: PenModel, rng: np.random.Generator) -> np.ndarray:
    """Ordered strokes ((K, 2) frame pixels, y down) -> (W, 6) float32 IMU at the spec rate."""
    rate = model.internal_rate_hz
    tip = _tip_trajectory(strokes, model, rng)  # (T, 3) at `rate`, with margins for the filters
    sensor, world_from_pen = _pen_pose(tip, model, rng)
    dt = 1.0 / rate
    acceleration = np.gradient(np.gradient(sensor, dt, axis=0), dt, axis=0)
    specific_force = acceleration + np.array([0.0, 0.0, GRAVITY_MS2])
    pen_from_world = world_from_pen.transpose(0, 2, 1)
    accel = (pen_from_world @ specific_force[:, :, None])[:, :, 0]
    rotation_rate = pen_from_world @ np.gradient(world_from_pen, dt, axis=0)
    gyro = 0.5 * np.stack(
        [
            rotation_rate[:, 2, 1] - rotation_rate[:, 1, 2],
            rotation_rate[:, 0, 2] - rotation_rate[:, 2, 0],
            rotation_rate[:, 1, 0] - rotation_rate[:, 0, 1],
        ],
        axis=1,
    )
    factor = int(round(rate / INPUT_SPEC.imu_rate_hz))
    measured = polyphase_resample(np.concatenate([accel, gyro], axis=1), 1, factor, axis=0, padtype="edge")
    window = INPUT_SPEC.imu_window_samples
    margin = (len(measured) - window) // 2
    measured = measured[margin : margin + window]
    sd_bias = np.array([model.accel_bias_sd_ms2] * 3 + [model.gyro_bias_sd_rads] * 3)
    sd_noise = np.array([model.accel_noise_sd_ms2] * 3 + [model.gyro_noise_sd_rads] * 3)
    measured = measured + rng.normal(0.0, sd_bias) + rng.normal(0.0, sd_noise, size=measured.shape)
    return measured.astype(np.float32)


def _tip_trajectory(strokes, model: PenModel, rng) -> np.ndarray:
    rate = model.internal_rate_hz
    metres_per_px = rng.uniform(*model.digit_height_m) / _DIGIT_BOX_PX
    slant = np.deg2rad(rng.uniform(*model.slant_deg))
    rotation = np.array([[np.cos(slant), -np.sin(slant)], [np.sin(slant), np.cos(slant)]])
    centre = np.concatenate(strokes).mean(axis=0)
    paths = [((stroke - centre) * [1.0, -1.0] * metres_per_px) @ rotation.T for stroke in strokes]
    timed = [_power_law_timing(path, metres_per_px) for path in paths]
    writing_time = rng.uniform(*model.writing_time_s)
    natural_time = sum(times[-1] for _, times in timed)
    lifts = [rng.uniform(*model.pen_up_time_s) for _ in timed[1:]]
    lift_heights = [rng.uniform(*model.lift_height_m) for _ in lifts]
    window_s = INPUT_SPEC.imu_window_s
    # Long multi-stroke digits are written faster rather than cut off at the window's edge.
    longest_gesture_s = window_s - 3 * model.rest_s
    speed_up = max(1.0, (writing_time + sum(lifts)) / longest_gesture_s)
    writing_time, lifts = writing_time / speed_up, [lift / speed_up for lift in lifts]
    gesture_s = writing_time + sum(lifts)
    start_s = rng.uniform(model.rest_s, window_s - model.rest_s - gesture_s)

    knot_times, knot_points = [], []
    clock = start_s
    for index, (path, times) in enumerate(timed):
        if index:
            previous = knot_points[-1][-1]
            lift_t, lift_xyz = _pen_lift(previous[:2], path[0], lifts[index - 1], lift_heights[index - 1], rate)
            knot_times.append(clock + lift_t)
            knot_points.append(lift_xyz)
            clock += lifts[index - 1]
        scaled = times * (writing_time / natural_time)
        knot_times.append(clock + scaled)
        knot_points.append(np.column_stack([path, np.zeros(len(path))]))
        clock += scaled[-1]
    knot_t = np.concatenate(knot_times)
    knot_xyz = np.concatenate(knot_points)
    knot_t, unique = np.unique(knot_t, return_index=True)
    knot_xyz = knot_xyz[unique]
    # Half a second of margin on both sides keeps filter edge effects out of the window.
    margin_s = 0.5
    grid = np.arange(-margin_s, window_s + margin_s, 1.0 / rate)
    tip = np.column_stack([np.interp(grid, knot_t, knot_xyz[:, axis]) for axis in range(3)])
    return gaussian_filter1d(tip, model.hand_smoothing_s * rate, axis=0, mode="nearest")


def _power_law_timing(path: np.ndarray, metres_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Densify a stroke and give each point a time (s, in arbitrary units) from the 2/3 power law."""
    spacing = 0.25 * metres_per_px
    segment = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(segment)])
    if arc[-1] < spacing:
        return path[:1].repeat(2, axis=0), np.array([0.0, 1e-3])
    s = np.arange(0.0, arc[-1], spacing)
    dense = np.column_stack([np.interp(s, arc, path[:, axis]) for axis in range(2)])
    dense = gaussian_filter1d(dense, 2.0, axis=0, mode="nearest")  # removes the pixel staircase
    first = np.gradient(dense, spacing, axis=0)
    second = np.gradient(first, spacing, axis=0)
    speed = np.linalg.norm(first, axis=1) + 1e-12
    curvature = np.abs(first[:, 0] * second[:, 1] - first[:, 1] * second[:, 0]) / speed**3
    curvature = gaussian_filter1d(curvature, 4.0, mode="nearest")
    # Curvature floor: a straight line is as fast as an arc five digit-heights in radius, not infinitely fast.
    floor = 1.0 / (5.0 * _DIGIT_BOX_PX * metres_per_px)
    tangential = (curvature + floor) ** (-1.0 / 3.0)
    # Strokes start and end at rest: a sine ramp over their first and last 15 %.
    ramp = np.clip(np.minimum(s, s[-1] - s) / (0.15 * s[-1] + 1e-12), 0.0, 1.0)
    tangential *= np.maximum(np.sin(0.5 * np.pi * ramp), 0.15)
    times = np.concatenate([[0.0], np.cumsum(spacing / tangential[1:])])
    return dense, times


def _pen_lift(start_xy, end_xy, duration, height, rate) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk move in the air: times (0, duration) exclusive and (n, 3) positions."""
    steps = max(int(duration * rate), 2)
    tau = np.arange(1, steps) / steps
    blend = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
    xy = start_xy + np.outer(blend, np.subtract(end_xy, start_xy))
    z = height * 64.0 * tau**3 * (1.0 - tau) ** 3  # smooth bump, peak `height` at mid-move
    return tau * duration, np.column_stack([xy, z])


def _pen_pose(tip: np.ndarray, model: PenModel, rng) -> tuple[np.ndarray, np.ndarray]:
    """Sensor position (T, 3) and world-from-pen rotations (T, 3, 3) for a tip trajectory."""
    rate = model.internal_rate_hz
    tilt = np.deg2rad(rng.uniform(*model.tilt_deg))
    azimuth = np.deg2rad(rng.uniform(*model.azimuth_deg))
    rest_axis = np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt)])
    follow = rng.uniform(*model.hand_follow)
    # The grip trails the tip like a first-order low-pass (time constant hand_lag_s).
    smoothing = 1.0 / (model.hand_lag_s * rate)
    grip_motion = lfilter([smoothing], [1.0, smoothing - 1.0], tip - tip[0], axis=0)
    top = tip[0] + model.pen_length_m * rest_axis + follow * grip_motion
    axis = top - tip
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    sensor = tip + model.sensor_from_tip_m * axis

    t = np.arange(len(tip)) / rate
    wobble = np.deg2rad(rng.uniform(*model.roll_wobble_deg))
    roll = rng.uniform(-np.pi, np.pi) + wobble * np.sin(2 * np.pi * rng.uniform(*model.roll_rate_hz) * t + rng.uniform(0, 2 * np.pi))
    reference = np.column_stack([np.cos(roll), np.sin(roll), np.zeros_like(roll)])
    x_axis = reference - np.sum(reference * axis, axis=1, keepdims=True) * axis
    x_axis /= np.linalg.norm(x_axis, axis=1, keepdims=True)
    y_axis = np.cross(axis, x_axis)
    return sensor, np.stack([x_axis, y_axis, axis], axis=2)
