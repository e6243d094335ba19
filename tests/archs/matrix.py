"""Recipe builders and checks shared by the architecture-matrix tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from archs.families import FAMILIES

TRAIN = {"max_steps": 2, "batch_size": 4, "grad_accum": 1, "lr": 5e-3, "log_every": 1, "warmup_steps": 0}
LORA = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}  # target_modules: the default (all-linear)


def recipe(kind: str, family: str, base: Path, data: Path, out: Path, **sections: Any) -> dict:
    r: dict[str, Any] = {
        "recipe": kind,
        "model": {"base": str(base)},
        "data": {"train": str(data), "max_length": 48, "validation_split": 0.0,
                 "chat_template": FAMILIES[family].chat_template},
        "train": dict(TRAIN),
        "output": {"dir": str(out)},
    }
    for key, value in sections.items():
        r.setdefault(key, {}).update(value) if isinstance(value, dict) else r.__setitem__(key, value)
    return r


def run(tmp_path: Path, r: dict):
    from llmops.config import load_recipe
    from llmops.train.engine import Engine

    path = tmp_path / f"{Path(r['output']['dir']).name}.yaml"
    path.write_text(yaml.safe_dump(r, sort_keys=False))
    return Engine(load_recipe(path)).run()


def linear_names(model: torch.nn.Module, exclude: set[torch.nn.Module]) -> set[str]:
    """Names of every Linear / Conv1D layer (what `all-linear` must adapt)."""
    from transformers.pytorch_utils import Conv1D

    return {n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, Conv1D)) and m not in exclude}


def sample_batch(tokenizer, n: int = 3) -> dict[str, torch.Tensor]:
    texts = ["open file read bytes", "sort items into order because the value", "good"][:n]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, ids))
    return {
        "input_ids": torch.tensor([x + [pad] * (width - len(x)) for x in ids]),
        "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
    }


def real_logits(model, batch) -> torch.Tensor:
    """Logits at non-pad positions only (pad positions are free to differ)."""
    with torch.no_grad():
        logits = model(**batch).logits
    return logits[batch["attention_mask"].bool()]
