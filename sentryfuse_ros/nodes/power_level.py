"""Battery percentage -> power level (ModalityState.POWER_*) with hysteresis, and its pruning budget.

No rclpy. Going down a level happens as soon as the percentage falls below that level's
threshold (save power promptly); going back up needs the threshold plus `hysteresis`, so a
battery hovering at a threshold does not make the level (and the model) flap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Index = the ModalityState.POWER_* constant.
LEVEL_NAMES = ("full", "normal", "low", "critical")
FROM_PERCENTAGE = "from_percentage"


def level_index(name: str) -> int:
    if name not in LEVEL_NAMES:
        raise ValueError(f"unknown power level {name!r}; expected one of {LEVEL_NAMES}")
    return LEVEL_NAMES.index(name)


@dataclass(frozen=True)
class PowerConfig:
    # Lowest percentage (0..1) of full, normal and low; below the last one is critical.
    thresholds: tuple[float, float, float] = (0.75, 0.40, 0.15)
    hysteresis: float = 0.05
    # Pruning budget of full, normal, low, critical.
    pruning_budgets: tuple[float, float, float, float] = (0.0, 0.2, 0.4, 0.6)
    # Level while the battery is unknown (never read, NaN, stale).
    unknown_level: str = "normal"
    # Level while charging, or FROM_PERCENTAGE to ignore charging.
    charging_level: str = "full"

    def problem(self) -> str | None:
        """Why this configuration is unusable, or None."""
        t = self.thresholds
        if len(t) != len(LEVEL_NAMES) - 1:
            return f"thresholds needs {len(LEVEL_NAMES) - 1} values (full, normal, low), got {len(t)}"
        if not all(0 < x < 1 for x in t) or not all(a > b for a, b in zip(t, t[1:])):
            return f"thresholds must be strictly decreasing inside (0, 1), got {list(t)}"
        if not 0 <= self.hysteresis < min(a - b for a, b in zip((1.0, *t), t)):
            return f"hysteresis must be >= 0 and smaller than the gap between thresholds (and to 1), got {self.hysteresis}"
        if len(self.pruning_budgets) != len(LEVEL_NAMES) or not all(0 <= b < 1 for b in self.pruning_budgets):
            return f"pruning_budgets needs {len(LEVEL_NAMES)} values in [0, 1), got {list(self.pruning_budgets)}"
        if self.unknown_level not in LEVEL_NAMES:
            return f"unknown_level must be one of {LEVEL_NAMES}, got {self.unknown_level!r}"
        if self.charging_level not in (*LEVEL_NAMES, FROM_PERCENTAGE):
            return f"charging_level must be one of {(*LEVEL_NAMES, FROM_PERCENTAGE)}, got {self.charging_level!r}"
        return None


class PowerLevelSelector:
    def __init__(self, config: PowerConfig):
        reason = config.problem()
        if reason:
            raise ValueError(reason)
        self.config = config
        self._from_percentage: int | None = None  # hysteresis memory; None while unknown

    def reconfigure(self, config: PowerConfig) -> None:
        reason = config.problem()
        if reason:
            raise ValueError(reason)
        self.config = config

    def update(self, percentage: float, charging: bool) -> int:
        """Power level for this reading (NaN = unknown)."""
        if math.isnan(percentage):
            self._from_percentage = None
        else:
            self._from_percentage = self._with_hysteresis(percentage)
        if charging and self.config.charging_level != FROM_PERCENTAGE:
            return level_index(self.config.charging_level)
        if self._from_percentage is None:
            return level_index(self.config.unknown_level)
        return self._from_percentage

    def budget(self, level: int) -> float:
        return self.config.pruning_budgets[level]

    def _with_hysteresis(self, percentage: float) -> int:
        thresholds = self.config.thresholds
        plain = next((i for i, t in enumerate(thresholds) if percentage >= t), len(thresholds))
        current = self._from_percentage
        if current is None or plain >= current:
            return plain  # first reading, same level, or worse: follow at once
        # Better than now: climb only to levels cleared by threshold + hysteresis.
        return next(
            (i for i in range(plain, current) if percentage >= thresholds[i] + self.config.hysteresis), current
        )
