"""AdamW and the learning-rate schedule of a recipe's ``train`` section."""

from __future__ import annotations

import torch

from llmops.config.schema import TrainSection


def build_optimizer(model: torch.nn.Module, cfg: TrainSection) -> torch.optim.AdamW:
    """AdamW over trainable parameters; biases and norm weights (1-D) get no weight decay.

    Decaying gains and biases pulls them toward 0, which is never the intent (the same
    rule as HF Trainer and nanoGPT).
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    if not decay and not no_decay:
        raise RuntimeError("the model has no trainable parameters")
    from llmops.train.gpu import adamw_kwargs

    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps,
        **adamw_kwargs(cfg, decay + no_decay),
    )


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainSection) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warmup for `warmup_steps`, then cosine / linear decay to 0 or constant."""
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.lr_scheduler]
    return get_scheduler(name, optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.max_steps)
