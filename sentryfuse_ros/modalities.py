"""The sensor modalities SentryFuse fuses and the classes it predicts.

Every component (data, model, gate, nodes, messages) uses this canonical order.
"""

from itertools import combinations

MODALITIES: tuple[str, ...] = ("camera", "imu", "audio")
CLASS_NAMES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

# All 7 non-empty modality subsets, canonical order inside each, singles first.
MODALITY_SUBSETS: tuple[tuple[str, ...], ...] = tuple(
    subset for size in range(1, len(MODALITIES) + 1) for subset in combinations(MODALITIES, size)
)


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
