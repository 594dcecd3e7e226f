"""Which prune ratio a prediction uses: inference_node's rule, also followed by the benches that
check the node's plans from outside.

`prune_ratio` is fixed when it is 0 or more; a negative value (inference_params.AUTO_RATIO, -1)
means automatic: `ratio_policy[power_level]`, one ratio per power level (full, normal, low,
critical). Pure functions, no ROS.
"""

from __future__ import annotations

from collections.abc import Sequence


def is_automatic(prune_ratio: float) -> bool:
    return prune_ratio < 0


def ratio_for(prune_ratio: float, ratio_policy: Sequence[float], power_level: int) -> float:
    """The ratio a prediction at `power_level` uses."""
    return float(ratio_policy[power_level]) if is_automatic(prune_ratio) else float(prune_ratio)


def planned_ratios(prune_ratio: float, ratio_policy: Sequence[float]) -> list[float]:
    """Every ratio `ratio_for` can return for these parameters, sorted: the ones to prebuild plans for."""
    fixed = [] if is_automatic(prune_ratio) else [float(prune_ratio)]
    return sorted({*map(float, ratio_policy), *fixed})
