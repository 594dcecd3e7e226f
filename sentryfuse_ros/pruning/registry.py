"""Every pruning method by name: the baselines, the per-subset oracle, SentryGate and ablations.

`DEFAULT_METHODS` is what `sentryfuse eval` compares; the ablations (kwon-no-tuning,
kwon+rearrange, flap-no-compensation and GATE_ABLATIONS) switch one refinement of a method off
or on, to show what it is worth (`sentryfuse eval --methods ...`). SentryGate is imported only
when asked for, so everything else works without its module or gate weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sentryfuse_ros.pruning.baselines.flap import Flap
from sentryfuse_ros.pruning.baselines.kwon import KwonFisher
from sentryfuse_ros.pruning.baselines.magnitude import MagnitudePruning
from sentryfuse_ros.pruning.baselines.random import RandomPruning
from sentryfuse_ros.pruning.baselines.taylor import StaticTaylor, SubsetTaylorOracle
from sentryfuse_ros.pruning.method import PruningMethod

SENTRYGATE = "sentrygate"
ORACLE = "oracle"
# Zero-shot competitors of SentryGate: static plans, measured (where they need data) with all modalities.
BASELINES = ("random", "magnitude", "taylor", "kwon", "flap")
DEFAULT_METHODS = (*BASELINES, ORACLE, SENTRYGATE)
# SentryGate's own ablations force one plan refinement, whatever the gate chose on held-out data.
GATE_ABLATIONS = {
    "sentrygate-no-refinement": "none",
    "sentrygate+compensation": "bias_compensation",
    "sentrygate+tuning": "mask_tuning",
}
# SentryGate and its ablations: never counted as baselines.
GATE_METHODS = (SENTRYGATE, *GATE_ABLATIONS)


FACTORIES: dict[str, Callable[[], PruningMethod]] = {
    "random": RandomPruning,
    "magnitude": MagnitudePruning,
    "taylor": StaticTaylor,
    "kwon": lambda: KwonFisher("kwon"),
    "flap": lambda: Flap("flap"),
    ORACLE: SubsetTaylorOracle,
    "kwon-no-tuning": lambda: KwonFisher("kwon-no-tuning", tune=False),
    "kwon+rearrange": lambda: KwonFisher("kwon+rearrange", rearrange_masks=True),
    "flap-no-compensation": lambda: Flap("flap-no-compensation", compensate=False),
}


METHOD_NAMES = (*FACTORIES, *GATE_METHODS)


def build_method(name: str, backbone: Path | None = None, gate: Path | None = None) -> PruningMethod:
    """The method called `name`. SentryGate loads `gate` (default: the shipped gate) after checking
    it was trained for the checkpoint at `backbone` (default: the shipped one)."""
    if name in GATE_METHODS:
        from sentryfuse_ros.pruning.sentry_gate_method import SentryGateMethod

        return SentryGateMethod(gate_path=gate, backbone_path=backbone, refinement=GATE_ABLATIONS.get(name), name=name)
    if name not in FACTORIES:
        raise ValueError(f"unknown pruning method {name!r}; choose from {', '.join(METHOD_NAMES)}")
    return FACTORIES[name]()
