"""What each power level buys: inference_node's power policy. Pure Python, no ROS.

Per level (full, normal, low, critical) the policy sets
- `prune_ratio`: the fraction of heads and FFN channels SentryGate removes;
- `rate_hz`: the most predictions per second (the node's tick rate at that level);
- `trigger`: `rate` predicts at every tick with new data; `change` predicts only when the
  change detector (nodes/change_detector.py) sees the scene change since the last prediction,
  or when the plan (live set or ratio) changes;
- `shed`: modalities the node stops consuming at that level: it unsubscribes them, so their
  messages are not even taken (heartbeat_monitor still watches every sensor);
- `offload`: whether a prediction that is not confident enough may also be sent to a base
  station, whose answer supersedes it (nodes/offload_link.py; nothing is sent while no base
  station is heard).

Shedding never leaves a prediction without input: when every live modality is shed, the one
worth most for its CPU (`value_order`, measured by `sentryfuse policy fit`) is kept.

The node's parameters `policy.<level>.<field>` hold it; a fixed `prune_ratio` >= 0 overrides
every level's ratio (the old "pin the ratio" switch), AUTO_RATIO (-1) means per level.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES

TRIGGERS = ("rate", "change")
AUTO_RATIO = -1.0  # prune_ratio value meaning "each level's policy.<level>.prune_ratio"
MAX_RATIO = 0.9  # the most a plan may remove
# The shipped policy, inference_node's parameter defaults (config/sentryfuse.yaml states the same).
# level: (prune_ratio, rate_hz, trigger, shed, offload); `sentryfuse policy fit` measures the first four.
POLICY_DEFAULTS = {
    "full": (0.0, 10.0, "rate", "", False),
    "normal": (0.0, 10.0, "rate", "", False),
    "low": (0.2, 5.0, "change", "imu", True),
    "critical": (0.2, 5.0, "change", "imu", True),
}


@dataclass(frozen=True)
class LevelPolicy:
    prune_ratio: float
    rate_hz: float
    trigger: str  # one of TRIGGERS
    shed: tuple[str, ...]  # canonical order, a subset of MODALITIES
    offload: bool = False

    def unshed(self) -> tuple[str, ...]:
        """The modalities this level does not shed, canonical order."""
        return tuple(name for name in MODALITIES if name not in self.shed)


def parse_modalities(text: str, what: str) -> tuple[str, ...]:
    """`"imu, audio"` -> ("imu", "audio") in canonical order; "" -> (). ValueError with a reason."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODALITIES]
    if unknown:
        raise ValueError(f"{what}: unknown modality {unknown[0]!r}; expected some of {', '.join(MODALITIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: {text!r} names a modality twice")
    return tuple(name for name in MODALITIES if name in names)


def param_name(level: str, field: str) -> str:
    return f"policy.{level}.{field}"


@dataclass(frozen=True)
class PowerPolicy:
    levels: tuple[LevelPolicy, ...]  # indexed by ModalityState.POWER_* (full, normal, low, critical)
    value_order: tuple[str, ...]  # modalities from most to least worth their CPU

    @classmethod
    def from_values(cls, values) -> "PowerPolicy":
        """The policy of a node's parameter values; ValueError with a reason if they do not make one."""
        fixed = float(values["prune_ratio"])
        levels = []
        for level in LEVEL_NAMES:
            ratio = float(values[param_name(level, "prune_ratio")])
            levels.append(LevelPolicy(
                prune_ratio=ratio if fixed < 0 else fixed,
                rate_hz=float(values[param_name(level, "rate_hz")]),
                trigger=values[param_name(level, "trigger")],
                shed=parse_modalities(values[param_name(level, "shed")], param_name(level, "shed")),
                offload=bool(values[param_name(level, "offload")]),
            ))
            if len(levels[-1].shed) == len(MODALITIES):
                raise ValueError(f"{param_name(level, 'shed')} sheds every modality; leave at least one")
        order = tuple(values["policy.value_order"])
        if sorted(order) != sorted(MODALITIES):
            raise ValueError(f"policy.value_order must name each of {', '.join(MODALITIES)} once, got {list(order)}")
        return cls(tuple(levels), order)

    def at(self, power_level: int) -> LevelPolicy:
        return self.levels[power_level]

    def planned_ratios(self) -> list[float]:
        """Every ratio a prediction can use, sorted: the ones to prebuild plans for."""
        return sorted({level.prune_ratio for level in self.levels})

    def offloads(self) -> bool:
        """Whether any level may offload (the node listens for a base station only then)."""
        return any(level.offload for level in self.levels)

    def slowest_rate_hz(self) -> float:
        return min(level.rate_hz for level in self.levels)

    def consumed(self, power_level: int, live: tuple[str, ...]) -> tuple[str, ...]:
        """The modalities the node subscribes at this level with these sensors alive: all but
        the shed ones, keeping the live modality worth most when every live one is shed."""
        kept = self.at(power_level).unshed()
        if live and not any(name in kept for name in live):
            best = next(name for name in self.value_order if name in live)
            kept = tuple(name for name in MODALITIES if name in kept or name == best)
        return kept


def policy_problem(values) -> str | None:
    """Why these parameter values make no policy, or None."""
    try:
        PowerPolicy.from_values(values)
    except ValueError as error:
        return str(error)
    return None
