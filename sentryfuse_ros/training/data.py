"""Labelled model inputs held in memory, and loading them from the prepared dataset cache."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class LabelledTensors:
    # modality -> (N, ...) float32 model inputs, as in sentryfuse_ros.data.spec.INPUT_SPEC.
    inputs: dict[str, Tensor]
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)


def load_labelled_split(name: str) -> LabelledTensors:
    """A split of the prepared dataset (`sentryfuse data prepare` builds the cache)."""
    from sentryfuse_ros.data.dataset import load_split

    split = load_split(name)
    return LabelledTensors(inputs=split.tensors(), labels=split.labels)
