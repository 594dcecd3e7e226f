"""Which test sample each scored live prediction was about, and which plan made it. No rclpy.

sensor_sim announces every sample on its ground-truth topic, in order: the k-th announcement is
sample `(start_index + k) % len(source)` of the replayed source. Live accuracy is exactly the
monitor's (scoring.RunningScore: a sample is scored by the prediction in force at its end); the
ledger adds the plan of that prediction, so the same plan can be run offline on the same sample,
and each sample's onset delay: from its start stamp to the receipt of the first correct
prediction made on its data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sentryfuse_ros.scoring import RunningScore


@dataclass(frozen=True)
class PlanUsed:
    plan_id: str
    subset: tuple[str, ...]
    ratio: float


@dataclass(frozen=True)
class ScoredSample:
    position: int  # k: the k-th ground-truth announcement of the run
    index: int  # row of the replayed source (test split) it stands for
    truth: str
    predicted: str
    plan: PlanUsed

    @property
    def correct(self) -> bool:
        return self.predicted == self.truth


@dataclass
class SampleLedger:
    start_index: int
    source_size: int
    score: RunningScore = field(default_factory=RunningScore)
    _last_plan: dict[int, PlanUsed] = field(default_factory=dict)  # sample stamp -> plan of its last prediction
    # Sample stamp -> (label, plan) of the prediction it was scored by. RunningScore scores a sample
    # when the next one is announced; a prediction arriving later is not part of that score.
    _scored_by: dict[int, tuple[str, PlanUsed]] = field(default_factory=dict)
    # Sample stamp -> receipt (ns, the bench's ROS clock) of its first prediction, and of its first correct one.
    first_prediction_ns: dict[int, int] = field(default_factory=dict)
    first_correct_ns: dict[int, int] = field(default_factory=dict)

    def on_truth(self, stamp_ns: int, label: str) -> None:
        self.score.on_truth(stamp_ns, label)
        for start in self.score.scored.keys() - self._scored_by.keys():
            by = self.score.scored_by[start]
            self._scored_by[start] = (self.score.last_prediction[by], self._last_plan[by])

    def on_prediction(self, stamp_ns: int, label: str, plan: PlanUsed, received_ns: int = 0) -> None:
        self.score.on_prediction(stamp_ns, label)
        sample = self.score.sample_at(stamp_ns)
        if sample is not None:
            self._last_plan[sample] = plan
            self.first_prediction_ns.setdefault(sample, received_ns)
            if label == self.score.labels.get(sample):
                self.first_correct_ns.setdefault(sample, received_ns)

    def onset(self, first_ns: int, last_ns: int) -> dict:
        """Onset -> first correct prediction over the whole samples between first_ns and last_ns:
        the median, a sample never predicted correctly counting as infinitely late (None when over
        half never were), how many samples, and the fraction never predicted correctly."""
        delays, never = self.onset_delays_ms(first_ns, last_ns)
        total = len(delays) + never
        if not total:
            return {"p50": None, "samples": 0, "never_fraction": None}
        ranked = sorted(delays) + [float("inf")] * never
        p50 = ranked[(total - 1) // 2]
        return {"p50": round(p50, 1) if p50 != float("inf") else None, "samples": total,
                "never_fraction": round(never / total, 3)}

    def onset_delays_ms(self, first_ns: int, last_ns: int) -> tuple[list[float], int]:
        """Onset -> first correct prediction (ms) of each sample that started at or after first_ns
        and ended by last_ns (ended: the next one was announced), and how many such samples never
        got a correct one."""
        delays, never = [], 0
        starts = [start for start, _ in self.score.truths]
        for start, following in zip(starts, starts[1:]):
            if start < first_ns or following > last_ns:
                continue
            if start in self.first_correct_ns:
                delays.append((self.first_correct_ns[start] - start) / 1e6)
            else:
                never += 1
        return delays, never

    def index_of(self, position: int) -> int:
        return (self.start_index + position) % self.source_size

    def scored_samples(self) -> list[ScoredSample]:
        """Every finished sample that got a prediction, in play order."""
        samples = []
        for position, (start, truth) in enumerate(self.score.truths):
            if start in self._scored_by:
                samples.append(ScoredSample(position, self.index_of(position), truth, *self._scored_by[start]))
        return samples
