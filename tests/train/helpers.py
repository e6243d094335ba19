"""Helpers for the training tests: a small uneven-length dataset and recipe builders."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "return the value of a list with keys sort items into order open file read bytes from stream "
    "parse text and build tree count lines in the input join path parts split string on spaces"
).split()


def make_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Prompt/completion records of deliberately uneven lengths."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))
        completion = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        records.append({"prompt": f"Summarise: {prompt}", "completion": completion.capitalize() + "."})
    return records


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def sft_recipe(data_path: Path, out: Path, **sections) -> dict:
    """A small SFT recipe on the tiny built-in model; `sections` update its sections."""
    recipe = {
        "recipe": "sft",
        "model": {"base": "builtin:tiny"},
        "data": {"train": str(data_path), "max_length": 64, "validation_split": 0.0},
        "train": {"max_steps": 4, "batch_size": 4, "grad_accum": 1, "lr": 1e-3, "log_every": 1, "warmup_steps": 0},
        "output": {"dir": str(out)},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            recipe.setdefault(key, {}).update(value)
        else:
            recipe[key] = value
    return recipe


def load(tmp_path: Path, recipe: dict, name: str = "recipe.yaml"):
    from llmops.config import load_recipe

    return load_recipe(write_recipe(tmp_path / name, recipe))


def subprocess_env(tmp_home: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        LLMOPS_THREADS="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(var, None)
    return env


LLMOPS = [sys.executable, "-m", "llmops"]
