"""The training loop: modality-dropout curriculum, AdamW, best checkpoint by validation accuracy.

Outputs in `out_dir`: `<variant>.safetensors` + `<variant>.json` (the best epoch) and
`<variant>.train.jsonl` (the metrics log: a `start` record, `step` records every
`log_every` steps, one `epoch` record per epoch with validation accuracy per modality subset,
and an `end` record with the wall time).

Validation score = mean validation accuracy over the subsets the variant trains on: all 7 with
modality dropout, only all-three-modalities without it. With joint training (training/joint.py)
it is that mean over the unpruned model and the gate's plans at `joint.val_budgets`, and the
gate of the best epoch is returned with it.

Under torchrun (inside `distributed.process_group()`) every rank builds the same model and draws
the same shuffle and modality subsets from the same seed, trains on its share of each global
batch (so batch size and optimizer steps are those of one process) and DDP averages the
gradients; only rank 0 evaluates, logs and saves.
"""

from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sentryfuse_ros.modalities import subset_name, subsets_of
from sentryfuse_ros.model.checkpoint import save_checkpoint
from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.model.sentry_gate import SentryGate
from sentryfuse_ros.pruning.saliency import MaskGradientRecorder
from sentryfuse_ros.training import distributed
from sentryfuse_ros.training.config import TrainConfig
from sentryfuse_ros.training.data import LabelledTensors
from sentryfuse_ros.training.evaluate import subset_accuracies
from sentryfuse_ros.training.joint import JointPruning, pruned_loss
from sentryfuse_ros.training.metrics_log import MetricsLog
from sentryfuse_ros.training.optimizer import build_optimizer, learning_rate


class _DiscardedLog(nullcontext):
    """The metrics log of ranks other than 0: only rank 0 writes one."""

    def write(self, event: str, **fields) -> None:
        pass


@dataclass
class TrainResult:
    checkpoint: Path
    log: Path
    best_epoch: int
    best_val_score: float
    best_val_accuracy: dict[str, float]
    seconds: float
    # Joint training: the gate of the best epoch (its MLP only: refine it before deploying).
    gate: SentryGate | None = None


def train(
    config: TrainConfig, train_data: LabelledTensors, val_data: LabelledTensors, out_dir: Path, progress: bool = True,
    init: SentryAttend | None = None,
) -> TrainResult:
    """Train config.model from scratch, or fine-tune `init` (a model of config.model, whose input
    statistics are kept: the weights were learnt on them)."""
    started = time.monotonic()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    # One generator drives shuffling and modality dropout, so a seed fixes the whole run.
    generator = torch.Generator().manual_seed(config.seed)
    rank, world = distributed.rank(), distributed.world_size()
    is_main = rank == 0
    out_dir = Path(out_dir)
    if init is not None and init.config != config.model:
        raise ValueError("the model to fine-tune is not the config's model")
    model = init if init is not None else SentryAttend(config.model)
    if init is None:
        model.fit_input_normalization(train_data.inputs)
    if config.joint is not None and world > 1:
        raise ValueError("joint training runs in one process: the gate's running importance would differ between ranks")
    joint = JointPruning(model, config.joint, config.seed) if config.joint is not None else None
    training_model = model
    if world > 1:
        # Dropped modalities leave their tokenizer without gradients (the same on every rank). The
        # buffers (input statistics, masks) never change in training: no need to sync them per step.
        training_model = DistributedDataParallel(model, find_unused_parameters=True, forward_sync_buffers=False)
        # The model is built; from here the global RNG only draws dropout masks, which must differ
        # between ranks' shards.
        torch.manual_seed(config.seed + rank)
    optimizer = build_optimizer(model, config)
    steps_per_epoch = ceil(len(train_data) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    trains_on_subsets = config.curriculum.max_drop_probability > 0
    task = config.model.modalities
    selection_subsets = subsets_of(task) if trains_on_subsets else (task,)
    checkpoint_path = out_dir / config.variant
    log_path = out_dir / f"{config.variant}.train.jsonl"
    log = MetricsLog(log_path) if is_main else _DiscardedLog()
    log.write(
        "start",
        config=config.to_dict(),
        n_train=len(train_data),
        n_val=len(val_data),
        parameters=sum(p.numel() for p in model.parameters()),
        selection_subsets=[subset_name(s) for s in selection_subsets],
        world_size=world,
    )
    best = {"epoch": -1, "score": -1.0, "accuracy": {}}
    best_gate_state = None
    step = 0
    with log, tqdm(total=total_steps, disable=not (progress and is_main), desc=config.variant, unit="step") as bar:
        for epoch in range(config.epochs):
            training_model.train()
            order = torch.randperm(len(train_data), generator=generator)
            epoch_loss, epoch_correct = 0.0, 0
            for batch_index in range(steps_per_epoch):
                indices = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
                fractional_epoch = epoch + batch_index / steps_per_epoch
                subset = config.curriculum.sample_subset(fractional_epoch, generator, task)
                mine = indices[rank::world]
                # A last batch smaller than the world leaves a rank no samples: it runs one at
                # weight 0, because every rank must join DDP's gradient all-reduce.
                rows = mine if len(mine) else indices[:1]
                # Only the kept modalities are sliced out: dropped tensors are never read.
                batch = {name: train_data.inputs[name][rows] for name in subset}
                labels = train_data.labels[rows]
                lr = learning_rate(step, total_steps, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                recorder = MaskGradientRecorder(model) if joint is not None else nullcontext()
                with recorder:
                    logits = training_model(batch)
                    loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    # DDP averages gradients over ranks: weighting each shard's mean loss by world x its
                    # share of the batch makes that the gradient of the whole batch's mean loss.
                    (loss * (len(mine) * world / len(indices))).backward()
                if joint is not None:
                    _joint_step(joint, recorder, model, subset, fractional_epoch, batch, labels, logits, config)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                step += 1
                loss_sum, correct = distributed.all_reduce_sum(
                    [loss.item() * len(mine), float((logits.argmax(dim=1) == labels)[: len(mine)].sum())]
                )
                batch_loss = loss_sum / len(indices)
                epoch_loss += loss_sum
                epoch_correct += int(correct)
                if step % config.log_every == 0:
                    log.write("step", step=step, epoch=epoch, loss=batch_loss, lr=lr, subset=subset_name(subset))
                bar.set_postfix(loss=f"{batch_loss:.3f}", subset=subset_name(subset), refresh=False)
                bar.update()
            if not is_main:
                # Rank 0 evaluates, logs and saves while the others wait.
                distributed.barrier()
                continue
            val_accuracy = subset_accuracies(
                model, val_data.inputs, val_data.labels, subsets_of(task), config.eval_batch_size
            )
            score = sum(val_accuracy[subset_name(s)] for s in selection_subsets) / len(selection_subsets)
            pruned_fields = {}
            if joint is not None:
                pruned_accuracy = _pruned_val_accuracy(joint, val_data, selection_subsets, config)
                pruned_fields = {"val_pruned_accuracy": pruned_accuracy}
                scores = [score, *(sum(by_subset.values()) / len(by_subset) for by_subset in pruned_accuracy.values())]
                score = sum(scores) / len(scores)
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
                **pruned_fields,
                is_best=is_best,
                seconds=time.monotonic() - started,
            )
            bar.write(f"epoch {epoch}: val score {score:.4f}" + (" (best)" if is_best else ""))
            if is_best:
                best = {"epoch": epoch, "score": score, "accuracy": val_accuracy}
                if joint is not None:
                    best_gate_state = copy.deepcopy(joint.gate.state_dict())
                meta = {"variant": config.variant, "epoch": epoch, "val_score": score, "val_accuracy": val_accuracy}
                save_checkpoint(
                    model, checkpoint_path, meta={**meta, "world_size": world, "train_config": config.to_dict()}
                )
            distributed.barrier()
        seconds = time.monotonic() - started
        log.write("end", seconds=seconds, best_epoch=best["epoch"], best_val_score=best["score"])
    # Only rank 0 evaluated: every rank returns its result.
    best, seconds = distributed.broadcast_from_main((best, seconds))
    gate = None
    if joint is not None and best_gate_state is not None:
        gate = joint.gate
        gate.load_state_dict(best_gate_state)
    return TrainResult(
        checkpoint=checkpoint_path.with_name(checkpoint_path.name + ".safetensors"),
        log=log_path,
        best_epoch=best["epoch"],
        best_val_score=best["score"],
        best_val_accuracy=best["accuracy"],
        seconds=seconds,
        gate=gate,
    )


def _joint_step(joint: JointPruning, recorder: MaskGradientRecorder, model: SentryAttend, subset, epoch: float,
                batch, labels, full_logits, config: TrainConfig) -> None:
    """The joint part of one step: record the full-width pass's importance, run the pruned pass
    (its gradients add to the full-width pass's before the optimizer step) and fit the gate."""
    joint.record(subset, recorder.gradients())
    budget = joint.draw_budget(epoch)
    if budget is not None:
        with joint.pruned(subset, budget):
            logits = model(batch)
            pruned_loss(logits, labels, full_logits, config.joint, config.label_smoothing).backward()
    joint.fit_step()


def _pruned_val_accuracy(joint: JointPruning, val_data: LabelledTensors, subsets, config: TrainConfig) -> dict:
    """{budget: {subset: accuracy}} of the gate's (unrefined) plans on the validation split."""
    accuracy = {}
    for budget in config.joint.val_budgets:
        by_subset = {}
        for subset in subsets:
            with joint.pruned(subset, budget) as pruned:
                by_subset.update(subset_accuracies(pruned, val_data.inputs, val_data.labels, [subset], config.eval_batch_size))
        accuracy[f"{budget:g}"] = by_subset
    return accuracy
