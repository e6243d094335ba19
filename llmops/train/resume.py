"""What may change between a run and its `--resume`: only keys that do not touch the weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.errors import ConfigError
from llmops.train.metrics import flatten

# Logging, evaluation and checkpoint cadence, and what happens after training.
RESUME_MAY_CHANGE = frozenset(
    {
        "description",
        "train.log_every",
        "train.eval_every",
        "train.checkpoint_every",
        "train.keep_last",
        "output.register_as",
        "output.log_with",
    }
)


def check_resume_compatible(before: dict[str, Any], now: dict[str, Any], run_dir: Path) -> None:
    """Raise ConfigError naming the keys (old -> new) that would change the result."""
    old, new = flatten(before), flatten(now)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUME_MAY_CHANGE)
    if changed:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:5])
        raise ConfigError(
            f"--resume: the recipe differs from the run in {run_dir} ({shown}); "
            "resume with the same recipe or start a new output.dir"
        )
