"""Labelled model inputs held in memory, loaded from the digits benchmark or a recorded dataset."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from sentryfuse_ros.data.recorded import DIGITS, DatasetError
from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec


@dataclass
class LabelledTensors:
    # modality -> (N, ...) float32 model inputs, shaped as `spec` says.
    inputs: dict[str, Tensor]
    labels: Tensor
    spec: InputSpec = field(default=INPUT_SPEC)

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, count: int) -> LabelledTensors:
        """The first `count` samples (quick runs)."""
        return LabelledTensors({name: t[:count] for name, t in self.inputs.items()}, self.labels[:count], self.spec)


def load_labelled_split(split: str, data: str = DIGITS) -> LabelledTensors:
    """A split of the digits benchmark (`sentryfuse data prepare` builds its cache) or of the
    recorded dataset named `data` (`sentryfuse data from-bag` writes one)."""
    if data == DIGITS:
        from sentryfuse_ros.data.dataset import load_split

        loaded = load_split(split)
        return LabelledTensors(inputs=loaded.tensors(), labels=loaded.labels)
    from sentryfuse_ros.data.recorded import load_recorded_split

    recorded, spec = load_recorded_split(data, split)
    return LabelledTensors(recorded.inputs, recorded.labels, spec)


def check_same_task(model_spec: InputSpec, data: LabelledTensors, data_name: str) -> None:
    """DatasetError unless a model of `model_spec` takes this data (same modalities, classes and shapes)."""
    if model_spec != data.spec:
        differing = [name for name in model_spec.to_dict() if getattr(model_spec, name) != getattr(data.spec, name)]
        raise DatasetError(f"the checkpoint was trained for another task than the dataset {data_name!r}: "
                         f"{', '.join(differing)} differ")
