"""The sensor modalities SentryFuse fuses, their subsets, and the digits benchmark's classes.

Every component (data, model, gate, nodes, messages) uses this canonical order.
"""

from itertools import combinations

MODALITIES: tuple[str, ...] = ("camera", "imu", "audio")
# The digits benchmark's classes; a task of another dataset names its own (data.spec.InputSpec).
CLASS_NAMES: tuple[str, ...] = tuple(str(digit) for digit in range(10))


def canonical_subset(names) -> tuple[str, ...]:
    """Return `names` as a tuple in canonical order; raise ValueError on unknown or empty input."""
    names = set(names)
    unknown = names - set(MODALITIES)
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}; expected a subset of {MODALITIES}")
    if not names:
        raise ValueError("at least one modality must be alive")
    return tuple(m for m in MODALITIES if m in names)


def subset_name(subset) -> str:
    """'camera+audio' style name of a modality subset."""
    return "+".join(canonical_subset(subset))


def subsets_of(modalities) -> tuple[tuple[str, ...], ...]:
    """Every non-empty subset of `modalities`, canonical order inside each, singles first."""
    present = canonical_subset(modalities)
    return tuple(subset for size in range(1, len(present) + 1) for subset in combinations(present, size))


# All 7 non-empty subsets of the three modalities.
MODALITY_SUBSETS: tuple[tuple[str, ...], ...] = subsets_of(MODALITIES)
