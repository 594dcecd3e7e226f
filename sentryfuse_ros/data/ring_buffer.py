"""The newest rows of a stream in preallocated storage, readable as one contiguous array."""

from __future__ import annotations

import numpy as np


class SlidingBuffer:
    """The newest `capacity` rows written, as a view without copying.

    Storage holds two capacities: rows are written after the newest one and, when the storage's
    end is reached, the rows still needed move to the front. That is one copy per `capacity` rows
    written (a modular ring would need a copy on every read that crosses its end, and
    np.concatenate a copy of the whole window per message), and reads stay plain slices.
    """

    def __init__(self, capacity: int, row_shape: tuple[int, ...] = (), dtype=np.float32, zero_filled: bool = False):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._data = np.zeros((2 * capacity, *row_shape), dtype=dtype)
        self._start = 0
        self._end = capacity if zero_filled else 0  # zero_filled: starts as `capacity` rows of zeros

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def view(self) -> np.ndarray:
        """The rows held, oldest first; valid until the next write."""
        return self._data[self._start : self._end]

    def append(self, row) -> None:
        # One row per IMU message: this path skips extend's slicing.
        if self._end == len(self._data):
            self._move_to_front(self.capacity - 1)
        self._data[self._end] = row
        self._end += 1
        if self._end - self._start > self.capacity:
            self._start += 1

    def extend(self, rows: np.ndarray) -> None:
        rows = rows[max(0, len(rows) - self.capacity) :]
        if self._end + len(rows) > len(self._data):
            self._move_to_front(self.capacity - len(rows))
        self._data[self._end : self._end + len(rows)] = rows
        self._end += len(rows)
        self._start = max(self._start, self._end - self.capacity)

    def _move_to_front(self, keep: int) -> None:
        keep = min(keep, len(self))
        self._data[:keep] = self._data[self._end - keep : self._end]
        self._start, self._end = 0, keep
