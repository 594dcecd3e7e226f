"""`sentryfuse policy fit`'s arithmetic, without ROS: candidate policies, their accuracy from the
offline table, the Pareto front over (CPU, accuracy) and the rule that picks each level's policy.

A candidate is (prune ratio, prediction rate, trigger, shed modalities). Its accuracy, predictions
per sample and onset delay come from the stream replay (bench/stream_replay.py: the node's own
decisions on sensor_sim's streams of the test split), its CPU from the live system
(policy_fit.py). The reference
is full power as it was before the policy: nothing pruned or shed, 10 predictions/s, trigger
`rate`. Rules, each level against the reference (the power policy's targets):
- full: the reference itself (a robot on full battery gets the full model at full rate);
- normal: the cheapest candidate keeping >= 98% of the reference's accuracy;
- low: the most accurate candidate within 50% of the reference's CPU;
- critical: the cheapest candidate keeping >= 90% of the reference's accuracy (predictions that
  stay useful; the CPU it then costs is reported against its <= 25% target, which no candidate
  meets together with that accuracy on this model: see the README).
Only candidates whose onset -> first correct prediction p50 is within ONSET_LIMIT_MS qualify;
ties go to the cheaper one. A level with no qualifying candidate takes the cheapest qualifying one
(and says so).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.power_policy import TRIGGERS

RATIOS = (0.0, 0.2, 0.4, 0.6, 0.8)
RATES_HZ = (10.0, 5.0, 2.0)
SHEDS = ("", "imu", "imu,audio", "audio")
REFERENCE = {"prune_ratio": 0.0, "rate_hz": 10.0, "trigger": "rate", "shed": ""}
ONSET_LIMIT_MS = 300.0
NORMAL_ACCURACY, LOW_CPU, CRITICAL_ACCURACY = 0.98, 0.50, 0.90


@dataclass(frozen=True)
class Behaviour:
    """What is measured live: everything but the ratio (which changes only the forward)."""

    rate_hz: float
    trigger: str
    shed: str

    def check_period_s(self) -> float:
        """heartbeat_monitor's check period to pair with it: at 10 predictions/s and more, each
        sensor's own timeout (0); slower, one look per prediction period, at most 0.5 s. A dropout
        detected sooner than the next prediction would change nothing."""
        return 0.0 if self.rate_hz >= 10.0 else min(0.5, round(1.0 / self.rate_hz, 3))


def behaviours() -> list[Behaviour]:
    return [Behaviour(rate, trigger, shed) for rate, trigger, shed in itertools.product(RATES_HZ, TRIGGERS, SHEDS)]


@dataclass(frozen=True)
class Candidate:
    prune_ratio: float
    rate_hz: float
    trigger: str
    shed: str
    accuracy: float  # % of the replayed samples
    cpu_core: float  # product CPU measured live
    onset_p50_ms: float | None  # replayed; None: over half the samples never predicted correctly
    predictions_per_sample: float  # replayed

    def policy(self) -> dict:
        return {"prune_ratio": self.prune_ratio, "rate_hz": self.rate_hz, "trigger": self.trigger, "shed": self.shed}


def candidates(measured: dict[Behaviour, dict], replayed: dict[tuple[Behaviour, float], dict]) -> list[Candidate]:
    """Every (measured behaviour x ratio): CPU from `measured`, the rest from its replay score."""
    found = []
    for behaviour, figures in measured.items():
        for ratio in RATIOS:
            score = replayed[(behaviour, ratio)]
            found.append(Candidate(ratio, behaviour.rate_hz, behaviour.trigger, behaviour.shed, score["accuracy"],
                                   figures["cpu_core"], score["onset_p50_ms"], score["predictions_per_sample"]))
    return found


def pareto_front(found: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on both CPU (lower) and accuracy (higher), by CPU."""
    front = [c for c in found
             if not any(o.cpu_core <= c.cpu_core and o.accuracy >= c.accuracy
                        and (o.cpu_core < c.cpu_core or o.accuracy > c.accuracy) for o in found)]
    return sorted(front, key=lambda c: c.cpu_core)


def _qualifies(c: Candidate) -> bool:
    return c.onset_p50_ms is not None and c.onset_p50_ms <= ONSET_LIMIT_MS


def choose(found: list[Candidate]) -> dict[str, dict]:
    """Each level's candidate by the module's rules: {level: {"candidate", "rule", "met"}}."""
    reference = next(c for c in found if c.policy() == REFERENCE)
    pool = [c for c in found if _qualifies(c)] or found
    cheapest = min(pool, key=lambda c: (c.cpu_core, -c.accuracy))

    def best(condition, key) -> tuple[Candidate, bool]:
        eligible = [c for c in pool if condition(c)]
        return (min(eligible, key=key), True) if eligible else (cheapest, False)

    by_accuracy = lambda c: (-c.accuracy, c.cpu_core)  # noqa: E731
    by_cpu = lambda c: (c.cpu_core, -c.accuracy)  # noqa: E731
    normal, normal_met = best(lambda c: c.accuracy >= NORMAL_ACCURACY * reference.accuracy, by_cpu)
    low, low_met = best(lambda c: c.cpu_core <= LOW_CPU * reference.cpu_core, by_accuracy)
    critical, critical_met = best(lambda c: c.accuracy >= CRITICAL_ACCURACY * reference.accuracy, by_cpu)
    return {
        "full": {"candidate": asdict(reference), "rule": "the reference", "met": True},
        "normal": {"candidate": asdict(normal), "met": normal_met,
                   "rule": f"cheapest with accuracy >= {NORMAL_ACCURACY:g} x full's"},
        "low": {"candidate": asdict(low), "met": low_met, "rule": f"most accurate with CPU <= {LOW_CPU:g} x full's"},
        "critical": {"candidate": asdict(critical), "met": critical_met,
                     "rule": f"cheapest with accuracy >= {CRITICAL_ACCURACY:g} x full's"},
    }


def config_block(chosen: dict[str, dict], value_order: list[str]) -> dict:
    """The parameter-file lines of the chosen policy: inference_node's policy and the monitor's
    check periods, {node: {parameter: value}}."""
    policy = {level: Behaviour(entry["candidate"]["rate_hz"], entry["candidate"]["trigger"],
                               entry["candidate"]["shed"]) for level, entry in chosen.items()}
    inference = {"policy": {level: {field: entry["candidate"][field] for field in ("prune_ratio", "rate_hz", "trigger",
                                                                                  "shed")}
                            for level, entry in chosen.items()} | {"value_order": value_order}}
    monitor = {"power": {"check_periods_s": [policy[level].check_period_s() for level in chosen]}}
    return {"inference_node": inference, "heartbeat_monitor": monitor}


def modality_values(accuracy: dict[tuple[tuple[str, ...], float], float], cpu_ms_per_s: dict[str, float]) -> list[dict]:
    """Per modality: the accuracy it adds given the other two (unpruned plans, offline), its CPU
    (ms/s of taking and preprocessing it, live) and their ratio; most worth first."""
    rows = []
    for name in MODALITIES:
        others = tuple(m for m in MODALITIES if m != name)
        added = accuracy[(MODALITIES, 0.0)] - accuracy[(others, 0.0)]
        cpu = cpu_ms_per_s.get(name)
        rows.append({"modality": name, "accuracy_added_points": round(added, 2), "cpu_ms_per_s": cpu,
                     "points_per_cpu_ms": round(added / cpu, 3) if cpu else None})
    return sorted(rows, key=lambda row: -(row["points_per_cpu_ms"] if row["points_per_cpu_ms"] is not None
                                          else row["accuracy_added_points"]))
