"""Which test sample each scored live prediction was about, and which plan made it. No rclpy.

sensor_sim announces every sample on its ground-truth topic, in order: the k-th announcement is
sample `(start_index + k) % len(source)` of the replayed source. Live accuracy is exactly the
monitor's (scoring.RunningScore: a sample is scored by its last prediction); the ledger adds
the plan of that last prediction, so the same plan can be run offline on the same sample.
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

    def on_truth(self, stamp_ns: int, label: str) -> None:
        self.score.on_truth(stamp_ns, label)
        for start in self.score.scored.keys() - self._scored_by.keys():
            self._scored_by[start] = (self.score.last_prediction[start], self._last_plan[start])

    def on_prediction(self, stamp_ns: int, label: str, plan: PlanUsed) -> None:
        self.score.on_prediction(stamp_ns, label)
        sample = self.score.sample_at(stamp_ns)
        if sample is not None:
            self._last_plan[sample] = plan

    def index_of(self, position: int) -> int:
        return (self.start_index + position) % self.source_size

    def scored_samples(self) -> list[ScoredSample]:
        """Every finished sample that got a prediction, in play order."""
        samples = []
        for position, (start, truth) in enumerate(self.score.truths):
            if start in self._scored_by:
                samples.append(ScoredSample(position, self.index_of(position), truth, *self._scored_by[start]))
        return samples
