"""Which part of a recorded sample sensor_sim publishes at a given time. No rclpy.

A sample is replayed over [end - sample_period_s, end) and its recordings are placed to end at
`end`, so a sliding window that ends at the sample's end holds exactly the recorded sample (the
same input the offline evaluation gives the model). Positions come from the clock, not from a
callback count: a late or skipped timer callback leaves a gap, as a real sensor would, instead
of shifting everything after it.
"""

from __future__ import annotations

import numpy as np


def sample_at(t: float, period_s: float, start_index: int) -> int:
    """Index of the sample playing at t seconds after the replay started."""
    return start_index + int(t // period_s)


def audio_chunk_owner(t: float, chunk_s: float, period_s: float, start_index: int) -> int:
    """The sample a chunk published at t belongs to: it covers [t - chunk_s, t], so the one playing
    in its middle (a chunk published right at a boundary still holds the previous sample)."""
    return sample_at(t - chunk_s / 2, period_s, start_index)


def imu_row(seconds_to_end: float, rate_hz: float, n_rows: int) -> int:
    """Row of an (n_rows, 6) trajectory sampled at rate_hz to publish seconds_to_end before the
    sample's end; before the trajectory starts, row 0 (the pen at rest where it will begin)."""
    rows_to_end = int(seconds_to_end * rate_hz)
    return max(0, n_rows - 1 - rows_to_end)


def audio_indices(seconds_to_end: float, sample_rate: int, size: int, clip_samples: int) -> np.ndarray:
    """Indices into a clip of the `size` samples that end seconds_to_end before the clip's end
    (negative: after it).
    The clip loops with its end on the sample's end, so what precedes it is its own tail (the
    recording's room noise), never a hard cut to silence."""
    last = -round(seconds_to_end * sample_rate)  # one past the chunk's last sample, relative to the clip's end
    return (last - size + np.arange(size)) % clip_samples
