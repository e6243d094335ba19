"""Which examples each process sees at each micro-batch: a pure function of the position.

The order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone, so the data
position of a checkpoint is one integer (micro-batches consumed per process) and a
resumed run sees exactly the batches an uninterrupted run would. Global micro-batch
``k`` of an epoch is ``perm[k·W·B : (k+1)·W·B]`` (W processes, B micro-batch size) and
rank ``r`` takes its ``r``-th slice of B, so ranks never share an example within an
epoch. The last incomplete global batch of each epoch is dropped so that every rank
takes the same number of steps (DDP needs that); each epoch drops different examples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

import torch

from llmops.errors import DataError


class DataOrder:
    """Seeded, position-addressable micro-batch indices for one rank."""

    def __init__(self, n_examples: int, batch_size: int, world_size: int, rank: int, seed: int, shuffle: bool = True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        global_batch = batch_size * world_size
        if n_examples < global_batch:
            raise DataError(
                f"{n_examples} training examples cannot fill one global batch of {global_batch} "
                f"(train.batch_size={batch_size} x {world_size} processes); add data or lower train.batch_size"
            )
        self.n_examples, self.batch_size, self.world_size, self.rank = n_examples, batch_size, world_size, rank
        self.seed, self.shuffle = seed, shuffle
        self.batches_per_epoch = n_examples // global_batch

    @lru_cache(maxsize=2)
    def permutation(self, epoch: int) -> tuple[int, ...]:
        if not self.shuffle:
            return tuple(range(self.n_examples))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return tuple(torch.randperm(self.n_examples, generator=gen).tolist())

    def epoch_of(self, position: int) -> int:
        return position // self.batches_per_epoch

    def batch(self, position: int) -> list[int]:
        """Example indices of this rank's micro-batch number `position` (0-based)."""
        epoch, k = divmod(position, self.batches_per_epoch)
        start = (k * self.world_size + self.rank) * self.batch_size
        return list(self.permutation(epoch)[start : start + self.batch_size])

    def indices(self, start: int, stop: int) -> list[int]:
        """All example indices of micro-batches ``start..stop-1`` (for audits and tests)."""
        return [i for pos in range(start, stop) for i in self.batch(pos)]


def eval_shards(n_examples: int, batch_size: int, world_size: int, rank: int) -> list[list[int]]:
    """This rank's validation micro-batches; every rank gets the same number of batches.

    A rank whose slice of the last global batch is empty gets an empty list there: it
    must still run a (discarded) forward pass so that collective operations inside
    FSDP/DeepSpeed stay in lockstep.
    """
    global_batch = batch_size * world_size
    n_batches = -(-n_examples // global_batch)
    out = []
    for k in range(n_batches):
        start = k * global_batch + rank * batch_size
        out.append(list(range(start, min(start + batch_size, n_examples))))
    return out


def digest_indices(indices: Iterable[int]) -> str:
    """sha256 of a sequence of example indices (recorded per rank in the run)."""
    h = hashlib.sha256()
    for i in indices:
        h.update(int(i).to_bytes(8, "little"))
    return h.hexdigest()
