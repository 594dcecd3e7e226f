"""Training on 2 processes (torchrun, DDP over gloo) gives the run of 1 process: same steps,
same checkpoint layout, the same accuracy up to float reduction order; torchrun launch detection."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from conftest import REPO_ROOT
from sentryfuse_ros.model.checkpoint import load_checkpoint
from sentryfuse_ros.training.data import LabelledTensors
from sentryfuse_ros.training.distributed import Launch, detect_launch
from sentryfuse_ros.training.metrics_log import read_metrics_log
from test_training import tiny_config

SCRIPT = REPO_ROOT / "test" / "distributed_train_script.py"


def faint_data(n: int, seed: int) -> LabelledTensors:
    """test_training's per-class patterns plus noise, but fainter: validation accuracies stay well
    below 1, where a run that trained differently would show."""
    shapes = {"camera": (1, 28, 28), "imu": (6, 200), "audio": (40, 101)}
    patterns = torch.Generator().manual_seed(1234)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=generator)
    inputs = {
        name: 0.2 * torch.randn(10, *shape, generator=patterns)[labels] + torch.randn(n, *shape, generator=generator)
        for name, shape in shapes.items()
    }
    return LabelledTensors(inputs, labels)


def test_launch_is_read_from_torchrun_variables():
    assert detect_launch({}) == Launch(rank=0, world_size=1)
    assert detect_launch({"WORLD_SIZE": "1"}) == Launch(rank=0, world_size=1)
    assert detect_launch({"WORLD_SIZE": "2", "RANK": "1"}) == Launch(rank=1, world_size=2)
    assert not detect_launch({"WORLD_SIZE": "2", "RANK": "1"}).is_main
    for environ, message in (
        ({"WORLD_SIZE": "two"}, "not an integer"),
        ({"WORLD_SIZE": "0"}, "at least 1"),
        ({"WORLD_SIZE": "2"}, "needs RANK"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "outside 0..1"),
    ):
        with pytest.raises(ValueError, match=message):
            detect_launch(environ)


def train_under_torchrun(run_dir, out_dir, processes: int) -> list[dict]:
    # --standalone: rendezvous on localhost at a port the OS picks, so concurrent runs never meet;
    # GLOO_SOCKET_IFNAME keeps gloo's own connections on loopback too.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    result = subprocess.run(
        [*command, str(SCRIPT), str(run_dir), str(out_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "GLOO_SOCKET_IFNAME": "lo"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{processes} process(es):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return read_metrics_log(out_dir / "sentryattend.train.jsonl")


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    # Batches of 15 split 8 + 7 over two ranks, and 241 = 16 x 15 + 1 leaves a last batch of one
    # sample, so rank 1 gets none: unequal and empty shards are both exercised.
    train, val = faint_data(241, 0), faint_data(96, 1)
    tensors = {"train/labels": train.labels, "val/labels": val.labels}
    for name in train.inputs:
        tensors[f"train/{name}"], tensors[f"val/{name}"] = train.inputs[name], val.inputs[name]
    save_file(tensors, str(tmp_path / "data.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(tiny_config(batch_size=15).to_dict()))

    one = train_under_torchrun(tmp_path, tmp_path / "one", processes=1)
    two = train_under_torchrun(tmp_path, tmp_path / "two", processes=2)

    assert [r["world_size"] for r in (one[0], two[0])] == [1, 2]
    assert [r["event"] for r in one] == [r["event"] for r in two]
    epochs_one, epochs_two = ([r for r in log if r["event"] == "epoch"] for log in (one, two))
    assert len(epochs_one) == 3 and [r["step"] for r in epochs_one] == [r["step"] for r in epochs_two]
    single, double = (load_checkpoint(run / "sentryattend.safetensors") for run in (tmp_path / "one", tmp_path / "two"))
    assert double.meta["world_size"] == 2
    assert single.model.state_dict().keys() == double.model.state_dict().keys()
    # Same data, steps, gradients and subsets: only the order of float sums differs (DDP's gradient
    # all-reduce, the loss summed per shard). Measured on 2 cores over three data seeds: first-epoch
    # train losses at most 4e-8 apart, every final per-subset accuracy identical. The tolerances
    # leave wide margin: 1e-5 in loss, and up to two of the 96 validation samples (0.021) flipping,
    # should rounding differences (weights end up to 5e-4 apart) tip a borderline sample.
    assert epochs_two[0]["train_loss"] == pytest.approx(epochs_one[0]["train_loss"], abs=1e-5)
    final_one, final_two = epochs_one[-1]["val_accuracy"], epochs_two[-1]["val_accuracy"]
    assert final_one.keys() == final_two.keys()
    for subset, accuracy in final_one.items():
        assert final_two[subset] == pytest.approx(accuracy, abs=0.025), subset
