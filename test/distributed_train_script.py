"""Train on given data under torchrun, for test_train_distributed.py:

    python -m torch.distributed.run --standalone --nproc_per_node 2 test/distributed_train_script.py RUN_DIR OUT_DIR

RUN_DIR holds data.safetensors (`train/<name>` and `val/<name>` for each modality and `labels`)
and config.json (a TrainConfig.to_dict()). It runs process_group() + train() as `sentryfuse train`
does, but on this data instead of the prepared dataset cache.
"""

import json
import sys
from pathlib import Path

from safetensors.torch import load_file

from sentryfuse_ros.model.config import SentryAttendConfig
from sentryfuse_ros.training.config import TrainConfig
from sentryfuse_ros.training.curriculum import ModalityDropoutCurriculum
from sentryfuse_ros.training.data import LabelledTensors
from sentryfuse_ros.training.distributed import process_group
from sentryfuse_ros.training.trainer import train


def split(tensors: dict, name: str) -> LabelledTensors:
    prefix = f"{name}/"
    inputs = {key[len(prefix) :]: t for key, t in tensors.items() if key.startswith(prefix) and key != f"{name}/labels"}
    return LabelledTensors(inputs, tensors[f"{name}/labels"])


def main(run_dir: Path, out_dir: Path) -> None:
    tensors = load_file(str(run_dir / "data.safetensors"))
    settings = json.loads((run_dir / "config.json").read_text())
    config = TrainConfig(
        **{
            **settings,
            "model": SentryAttendConfig.from_dict(settings["model"]),
            "curriculum": ModalityDropoutCurriculum(**settings["curriculum"]),
        }
    )
    with process_group():
        train(config, split(tensors, "train"), split(tensors, "val"), out_dir, progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
