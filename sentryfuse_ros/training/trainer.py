"""The training loop: modality-dropout curriculum, AdamW, best checkpoint by validation accuracy.

Outputs in `out_dir`: `<variant>.safetensors` + `<variant>.json` (the best epoch) and
`<variant>.train.jsonl` (the metrics log: a `start` record, `step` records every
`log_every` steps, one `epoch` record per epoch with validation accuracy per modality subset,
and an `end` record with the wall time).

Validation score = mean validation accuracy over the subsets the variant trains on: all 7 with
modality dropout, only all-three-modalities without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sentryfuse_ros.modalities import MODALITIES, MODALITY_SUBSETS, subset_name
from sentryfuse_ros.model.checkpoint import save_checkpoint
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.training.config import TrainConfig
from sentryfuse_ros.training.data import LabelledTensors
from sentryfuse_ros.training.evaluate import subset_accuracies
from sentryfuse_ros.training.metrics_log import MetricsLog
from sentryfuse_ros.training.optimizer import build_optimizer, learning_rate


@dataclass
class TrainResult:
    checkpoint: Path
    log: Path
    best_epoch: int
    best_val_score: float
    best_val_accuracy: dict[str, float]
    seconds: float


def train(
    config: TrainConfig, train_data: LabelledTensors, val_data: LabelledTensors, out_dir: Path, progress: bool = True
) -> TrainResult:
    started = time.monotonic()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    # One generator drives shuffling and modality dropout, so a seed fixes the whole run.
    generator = torch.Generator().manual_seed(config.seed)
    out_dir = Path(out_dir)
    model = SentryAttend(config.model)
    model.fit_input_normalization(train_data.inputs)
    optimizer = build_optimizer(model, config)
    steps_per_epoch = ceil(len(train_data) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    trains_on_subsets = config.curriculum.max_drop_probability > 0
    selection_subsets = MODALITY_SUBSETS if trains_on_subsets else (MODALITIES,)
    checkpoint_path = out_dir / config.variant
    log = MetricsLog(out_dir / f"{config.variant}.train.jsonl")
    log.write(
        "start",
        config=config.to_dict(),
        n_train=len(train_data),
        n_val=len(val_data),
        parameters=sum(p.numel() for p in model.parameters()),
        selection_subsets=[subset_name(s) for s in selection_subsets],
    )
    best = {"epoch": -1, "score": -1.0, "accuracy": {}}
    step = 0
    with log, tqdm(total=total_steps, disable=not progress, desc=config.variant, unit="step") as bar:
        for epoch in range(config.epochs):
            model.train()
            order = torch.randperm(len(train_data), generator=generator)
            epoch_loss, epoch_correct = 0.0, 0
            for batch_index in range(steps_per_epoch):
                indices = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
                subset = config.curriculum.sample_subset(epoch + batch_index / steps_per_epoch, generator)
                # Only the kept modalities are sliced out: dropped tensors are never read.
                batch = {name: train_data.inputs[name][indices] for name in subset}
                labels = train_data.labels[indices]
                lr = learning_rate(step, total_steps, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                logits = model(batch)
                loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                step += 1
                epoch_loss += loss.item() * len(labels)
                epoch_correct += int((logits.argmax(dim=1) == labels).sum())
                if step % config.log_every == 0:
                    log.write("step", step=step, epoch=epoch, loss=loss.item(), lr=lr, subset=subset_name(subset))
                bar.set_postfix(loss=f"{loss.item():.3f}", subset=subset_name(subset), refresh=False)
                bar.update()
            val_accuracy = subset_accuracies(
                model, val_data.inputs, val_data.labels, MODALITY_SUBSETS, config.eval_batch_size
            )
            score = sum(val_accuracy[subset_name(s)] for s in selection_subsets) / len(selection_subsets)
            is_best = score > best["score"]
            log.write(
                "epoch",
                epoch=epoch,
                step=step,
                train_loss=epoch_loss / len(train_data),
                train_accuracy=epoch_correct / len(train_data),
                drop_probability_at_end=config.curriculum.drop_probability(epoch + 1),
                val_accuracy=val_accuracy,
                val_score=score,
                is_best=is_best,
                seconds=time.monotonic() - started,
            )
            bar.write(f"epoch {epoch}: val score {score:.4f}" + (" (best)" if is_best else ""))
            if is_best:
                best = {"epoch": epoch, "score": score, "accuracy": val_accuracy}
                meta = {"variant": config.variant, "epoch": epoch, "val_score": score, "val_accuracy": val_accuracy}
                save_checkpoint(model, checkpoint_path, meta={**meta, "train_config": config.to_dict()})
        seconds = time.monotonic() - started
        log.write("end", seconds=seconds, best_epoch=best["epoch"], best_val_score=best["score"])
    return TrainResult(
        checkpoint=checkpoint_path.with_name(checkpoint_path.name + ".safetensors"),
        log=log.path,
        best_epoch=best["epoch"],
        best_val_score=best["score"],
        best_val_accuracy=best["accuracy"],
        seconds=seconds,
    )
