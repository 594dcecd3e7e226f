"""`sentryfuse train`: train one SentryAttend variant on the prepared dataset.

    sentryfuse train --variant sentryattend --out runs/sentryattend

writes runs/sentryattend/sentryattend.{safetensors,json,train.jsonl}. The shipped weights in
sentryfuse_ros/weights/ are these files for the three variants with the default settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentryfuse_ros.training.config import VARIANTS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=VARIANTS, default="sentryattend", help="which model to train")
    parser.add_argument("--out", type=Path, required=True, help="directory for the checkpoint and metrics log")
    parser.add_argument("--epochs", type=int, help="override the variant's number of epochs")
    parser.add_argument("--seed", type=int, help="override the seed (default 0)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default 2)")
    parser.add_argument("--max-train-samples", type=int, help="train on the first N training samples (quick runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from sentryfuse_ros.training.config import variant_config
    from sentryfuse_ros.training.data import LabelledTensors, load_labelled_split
    from sentryfuse_ros.training.trainer import train

    overrides = {name: getattr(args, name) for name in ("epochs", "seed", "threads") if getattr(args, name) is not None}
    config = variant_config(args.variant, **overrides)
    train_data, val_data = load_labelled_split("train"), load_labelled_split("val")
    if args.max_train_samples is not None:
        keep = slice(0, args.max_train_samples)
        train_data = LabelledTensors({name: t[keep] for name, t in train_data.inputs.items()}, train_data.labels[keep])
    result = train(config, train_data, val_data, args.out, progress=not args.no_progress)
    print(f"best epoch {result.best_epoch}: validation score {result.best_val_score:.4f} in {result.seconds / 60:.1f} min")
    for subset, value in result.best_val_accuracy.items():
        print(f"  {subset:<18} {value:.4f}")
    print(f"checkpoint {result.checkpoint}\nmetrics log {result.log}")
    return 0
