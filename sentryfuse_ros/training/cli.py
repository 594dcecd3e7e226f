"""`sentryfuse train`: train one SentryAttend variant on the digits benchmark or a recorded dataset.

    sentryfuse train --variant sentryattend --out runs/sentryattend
    sentryfuse train --data my_robot --out runs/my_robot     # a dataset from `sentryfuse data from-bag`

writes runs/sentryattend/sentryattend.{safetensors,json,train.jsonl}. The shipped weights in
sentryfuse_ros/weights/ are these files for the three variants with the default settings. The
checkpoint's JSON holds the dataset's input spec (modalities, classes, shapes and rates), which
inference_node serves.

On N processes (DistributedDataParallel over gloo, CPU), launch it with torchrun:

    torchrun --standalone --nproc_per_node 2 -m sentryfuse_ros.cli train --variant sentryattend --out runs/sentryattend

Each process trains on its share of every batch, so the batch size and the number of steps are
those of one process; --threads is per process. Rank 0 evaluates, writes the files and prints.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from sentryfuse_ros.training.config import VARIANTS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "On N processes: torchrun --standalone --nproc_per_node N -m sentryfuse_ros.cli train ... "
        "(the same batch size and steps as one process; rank 0 evaluates, saves and prints)"
    )
    parser.add_argument("--variant", choices=VARIANTS, default="sentryattend", help="which model to train")
    parser.add_argument("--out", type=Path, required=True, help="directory for the checkpoint and metrics log")
    parser.add_argument("--data", default="digits",
                        help="digits (the benchmark) or a recorded dataset's name or directory (sentryfuse data from-bag)")
    parser.add_argument("--epochs", type=int, help="override the variant's number of epochs")
    parser.add_argument("--seed", type=int, help="override the seed (default 0)")
    parser.add_argument("--batch-size", type=int, help="override the batch size (default 128; smaller for a small dataset)")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process (default 2)")
    parser.add_argument("--init", type=Path, metavar="CHECKPOINT",
                        help="fine-tune this checkpoint (its architecture and input statistics) instead of starting "
                             "from scratch; its task must be the dataset's, e.g. the shipped weights on a digits recording")
    parser.add_argument("--max-train-samples", type=int, help="train on the first N training samples (quick runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from sentryfuse_ros.data.recorded import DatasetError
    from sentryfuse_ros.model.checkpoint import CheckpointError, load_checkpoint
    from sentryfuse_ros.training.config import variant_config
    from sentryfuse_ros.training.data import check_same_task, load_labelled_split
    from sentryfuse_ros.training.distributed import process_group
    from sentryfuse_ros.training.trainer import train

    overrides = {name: getattr(args, name) for name in ("epochs", "seed", "threads", "batch_size") if getattr(args, name) is not None}
    config = variant_config(args.variant, **overrides)
    # Entered first, so a bad torchrun environment fails before the data is loaded.
    with process_group() as launch:
        try:
            train_data, val_data = load_labelled_split("train", args.data), load_labelled_split("val", args.data)
            init = load_checkpoint(args.init).model.train() if args.init else None
            if init is not None:
                check_same_task(init.config.input, train_data, args.data)
        except (DatasetError, CheckpointError) as error:
            print(f"sentryfuse train: error: {error}", file=sys.stderr)
            return 2
        if args.max_train_samples is not None:
            train_data = train_data.head(args.max_train_samples)
        # The model takes the data's task: a new one of the variant, or the checkpoint fine-tuned.
        model = init.config if init is not None else replace(config.model, input=train_data.spec)
        config = replace(config, model=model)
        result = train(config, train_data, val_data, args.out, progress=not args.no_progress, init=init)
    if not launch.is_main:
        return 0
    print(f"best epoch {result.best_epoch}: validation score {result.best_val_score:.4f} in {result.seconds / 60:.1f} min")
    for subset, value in result.best_val_accuracy.items():
        print(f"  {subset:<18} {value:.4f}")
    print(f"checkpoint {result.checkpoint}\nmetrics log {result.log}")
    if result.gate is not None:
        print(f"gate {_save_joint_gate(result, config, val_data)}")
    return 0


def _save_joint_gate(result, config, val_data) -> Path:
    """Refine the best epoch's gate on the validation split and save it beside the checkpoint,
    where inference_node and `sentryfuse eval --checkpoint` look for it."""
    import time

    from sentryfuse_ros.model.checkpoint import backbone_sha256, load_checkpoint
    from sentryfuse_ros.model.gate_checkpoint import gate_beside, save_gate
    from sentryfuse_ros.training.joint import finish_gate

    started = time.perf_counter()
    backbone = load_checkpoint(result.checkpoint).model  # the best epoch, which the gate belongs to
    refinement = finish_gate(result.gate, backbone, val_data.inputs, val_data.labels, config.joint, config.seed)
    choice = ", ".join(f"{name} {100 * value:.1f}%" for name, value in refinement["heldout_accuracy"].items())
    print(f"plan refinement: {refinement['chosen']} (held-out accuracy of the gate's plans: {choice})")
    report = {"joint": config.joint.to_dict(), "refinement": refinement, "train_seconds": round(result.seconds, 1),
              "refine_seconds": round(time.perf_counter() - started, 1), "best_epoch": result.best_epoch}
    return save_gate(result.gate, gate_beside(result.checkpoint), backbone_sha256=backbone_sha256(result.checkpoint),
                     report=report)
