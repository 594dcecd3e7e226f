"""Process groups for training on several CPU processes launched by torchrun (gloo backend).

torchrun sets WORLD_SIZE and RANK (and MASTER_ADDR / MASTER_PORT, which init_process_group reads).
Without WORLD_SIZE, or with WORLD_SIZE=1, there is one process and no process group; every
function here then answers as that single process (rank 0 of 1) and communicates nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect_launch(environ: Mapping[str, str] = os.environ) -> Launch:
    """This process's rank and the world size from torchrun's environment variables."""
    world_text = environ.get("WORLD_SIZE")
    if world_text is None:
        return Launch(rank=0, world_size=1)
    try:
        world_size = int(world_text)
    except ValueError:
        raise ValueError(f"WORLD_SIZE={world_text!r} is not an integer") from None
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE={world_size} must be at least 1")
    if world_size == 1:
        return Launch(rank=0, world_size=1)
    rank_text = environ.get("RANK")
    try:
        rank = int(rank_text)
    except (TypeError, ValueError):
        raise ValueError(f"WORLD_SIZE={world_size} needs RANK set to an integer, got {rank_text!r}") from None
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    return Launch(rank=rank, world_size=world_size)


@contextmanager
def process_group() -> Iterator[Launch]:
    """A gloo process group for the body when launched on several processes; none otherwise."""
    launch = detect_launch()
    if launch.world_size == 1:
        yield launch
        return
    dist.init_process_group("gloo", rank=launch.rank, world_size=launch.world_size)
    try:
        yield launch
        # No rank tears the group down while another still has a collective in flight (rank 0's
        # last broadcast): gloo aborted the process there ("terminate called without an active
        # exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float]) -> list[float]:
    """The sums over all processes of `values` (float64, so counts stay exact)."""
    if not dist.is_initialized():
        return values
    total = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def broadcast_from_main(value: T) -> T:
    """Rank 0's `value` on every process (pickled: for small results only)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
