"""How live accuracy is scored, by `sentryfuse monitor` and `sentryfuse bench ros` alike. No rclpy.

sensor_sim announces each sample (its start stamp and label) on its ground-truth topic; a
prediction is about the newest sample announced at or before its header stamp. A sample is
scored by the prediction in force at its end (the one a robot acts on once the sample's full IMU
window has arrived): the last made on its data, or, where none was (a change-triggered node that
saw no change), the last one before it, which is then scored against this sample's label. It is
scored once the next sample is announced, so a running one never counts; samples before the
first prediction are not scored.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass
class RunningScore:
    """Per-sample accuracy from a stream of (stamp-ordered) predictions and ground-truth labels."""

    truths: list[tuple[int, str]] = field(default_factory=list)  # (stamp_ns, label), in order
    labels: dict[int, str] = field(default_factory=dict)  # the same, by sample stamp
    last_prediction: dict[int, str] = field(default_factory=dict)  # sample stamp -> newest predicted label
    scored: dict[int, bool] = field(default_factory=dict)
    # Sample stamp -> the sample whose prediction it was scored by (itself, or an earlier one).
    scored_by: dict[int, int] = field(default_factory=dict)

    def on_truth(self, stamp_ns: int, label: str) -> None:
        if not self.truths or stamp_ns > self.truths[-1][0]:
            self.truths.append((stamp_ns, label))
            self.labels[stamp_ns] = label
            self._score_finished()

    def on_prediction(self, stamp_ns: int, label: str) -> None:
        sample = self.sample_at(stamp_ns)
        if sample is not None:
            self.last_prediction[sample] = label

    def sample_at(self, stamp_ns: int) -> int | None:
        """The sample a prediction stamped `stamp_ns` is about: the newest announced at or before
        it (its start stamp), or None before the first."""
        owner = bisect.bisect_right(self.truths, stamp_ns, key=lambda truth: truth[0]) - 1
        return self.truths[owner][0] if owner >= 0 else None

    def _score_finished(self) -> None:
        """Every sample but the newest is finished: score the prediction in force at its end."""
        in_force = None  # the sample whose last prediction is the newest so far
        for start, label in self.truths[:-1]:
            if start in self.last_prediction:
                in_force = start
            if start not in self.scored and in_force is not None:
                self.scored[start] = self.last_prediction[in_force] == label
                self.scored_by[start] = in_force

    @property
    def accuracy(self) -> float | None:
        return sum(self.scored.values()) / len(self.scored) if self.scored else None

    def summary(self) -> str:
        if not self.scored:
            return "accuracy: no finished sample yet"
        return f"accuracy {100 * self.accuracy:.1f}% ({sum(self.scored.values())}/{len(self.scored)} samples)"
