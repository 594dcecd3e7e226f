"""How live accuracy is scored, by `sentryfuse monitor` and `sentryfuse bench ros` alike. No rclpy.

sensor_sim announces each sample (its start stamp and label) on its ground-truth topic; a
prediction is about the newest sample announced at or before its header stamp. A sample is
scored by the last prediction made on its data (the one a robot would act on once the sample's
full IMU window has arrived), once the next sample is announced, so a running one never counts.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass
class RunningScore:
    """Per-sample accuracy from a stream of (stamp-ordered) predictions and ground-truth labels."""

    truths: list[tuple[int, str]] = field(default_factory=list)  # (stamp_ns, label), in order
    last_prediction: dict[int, str] = field(default_factory=dict)  # sample stamp -> newest predicted label
    scored: dict[int, bool] = field(default_factory=dict)

    def on_truth(self, stamp_ns: int, label: str) -> None:
        if not self.truths or stamp_ns > self.truths[-1][0]:
            self.truths.append((stamp_ns, label))
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
        """Every sample but the newest is finished: score its last prediction."""
        labels = dict(self.truths)
        for start, _ in self.truths[:-1]:
            if start not in self.scored and start in self.last_prediction:
                self.scored[start] = self.last_prediction[start] == labels[start]

    @property
    def accuracy(self) -> float | None:
        return sum(self.scored.values()) / len(self.scored) if self.scored else None

    def summary(self) -> str:
        if not self.scored:
            return "accuracy: no finished sample yet"
        return f"accuracy {100 * self.accuracy:.1f}% ({sum(self.scored.values())}/{len(self.scored)} samples)"
