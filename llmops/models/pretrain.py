"""A small, deterministic causal-LM pretraining loop for the built-in models.

Deliberately simple (no accelerate, no Trainer): one process, fixed thread count,
deterministic algorithms, a seeded data order. That is what makes two builds with the
same seed produce bit-identical weights on the same machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

BUILD_THREADS = 1  # fixed, not os.cpu_count(): results depend on the thread count (measured), so one thread everywhere


@dataclass(frozen=True)
class PretrainConfig:
    seq_len: int
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    weight_decay: float
    seed: int


@contextmanager
def deterministic_torch(threads: int = BUILD_THREADS) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the duration; restored afterwards."""
    import torch

    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def make_blocks(token_ids: list[int], seq_len: int):
    """Cut the concatenated token stream into full `seq_len` blocks (the tail is dropped)."""
    import torch

    n = len(token_ids) // seq_len
    if n == 0:
        raise ValueError(f"corpus has {len(token_ids)} tokens, fewer than one block of {seq_len}")
    return torch.tensor(token_ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(model, blocks, cfg: PretrainConfig, progress: bool = True) -> list[float]:
    """Train `model` in place on `blocks` (N × seq_len) for cfg.steps; returns per-step losses."""
    import torch
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        foreach=False,
    )
    model.train()
    order = torch.randperm(len(blocks), generator=gen)
    cursor, losses = 0, []
    # disable=None: a bar on a terminal, silence in logs and captured output.
    bar = tqdm(range(cfg.steps), desc="pretraining", unit="step", disable=None if progress else True, leave=False)
    for step in bar:
        if cursor + cfg.batch_size > len(order):
            order, cursor = torch.randperm(len(blocks), generator=gen), 0
        batch = blocks[order[cursor : cursor + cfg.batch_size]]
        cursor += cfg.batch_size
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=False)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def mean_loss(model, blocks, batch_size: int = 16) -> float:
    """Mean next-token loss over `blocks` (used to report held-out loss of a built model)."""
    import torch

    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(blocks), batch_size):
            batch = blocks[i : i + batch_size]
            total += model(input_ids=batch, labels=batch).loss.item() * len(batch)
            n += len(batch)
    return total / max(n, 1)
