"""Data-parallel evaluation under ``accelerate launch``: each process runs a shard, rank 0 writes.

`llmops eval run` launched with N processes (``accelerate launch --multi_gpu
--num_processes N -m llmops eval run ...``; on a CPU-only machine too) gives each rank
every N-th sample, gathers the raw outputs on rank 0 in the original order and lets only
rank 0 score, cache and write. The result equals a one-process run: the outputs are the
same (sharding changes batch composition, which greedy fp32 decoding does not depend
on), and the world size is recorded. A plain ``llmops eval run`` is one process and
pays nothing for this.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    """The launch's world; one process unless a launcher set WORLD_SIZE > 1."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    from accelerate import PartialState

    import torch

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes != int(os.environ["WORLD_SIZE"]):
        raise RuntimeError(f"launcher says WORLD_SIZE={os.environ['WORLD_SIZE']} but accelerate sees "
                           f"{state.num_processes} processes: use --multi_gpu (on CPU too), not --cpu")
    return World(state.process_index, state.num_processes)


def device_for(world: World, requested: str | None) -> str | None:
    """Each rank on its own GPU when there are GPUs and no device was asked for."""
    if requested or world.size == 1:
        return requested
    import torch

    return f"cuda:{world.rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"


def run_sharded(world: World, items: list[Any], fn: Callable[[list[Any]], list[T]]) -> list[T] | None:
    """`fn` over this rank's share of `items`; on rank 0 all results in the original order, else None."""
    if world.size == 1:
        return fn(items)
    from accelerate.utils import gather_object

    mine = list(range(world.rank, len(items), world.size))
    results = fn([items[i] for i in mine]) if mine else []
    gathered = gather_object([list(zip(mine, results))])  # one entry per rank
    if not world.is_main:
        return None
    ordered: list[Any] = [None] * len(items)
    for pairs in gathered:
        for i, r in pairs:
            ordered[i] = r
    return ordered


def finish(world: World) -> None:
    """Wait for every rank and shut the process group down (a clean exit on every rank)."""
    if world.size > 1:
        from accelerate import PartialState

        state = PartialState()
        state.wait_for_everyone()
        state.destroy_process_group()
