"""Create the `Accelerator` for a recipe, and refuse to pretend about the world size.

Two traps this module closes (both measured on CPU, see docs/training.md):

- ``accelerate launch --cpu --num_processes 2`` starts ONE process; the user believes
  they run two. The launcher still exports ``MASTER_ADDR`` for N > 1, so a
  single-process run that sees it with ``ACCELERATE_USE_CPU`` is refused.
- Without ``Accelerator(cpu=True)`` on a GPU-less machine, every rank of a
  ``--multi_gpu`` launch believes it is alone and trains independently; a world size
  that disagrees with the launcher's ``WORLD_SIZE`` is refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from llmops.config.schema import Recipe
from llmops.errors import ConfigError, UserError

log = logging.getLogger(__name__)


def has_accelerator_device() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def check_trackers(names: list[str]) -> None:
    """Fail before training when a requested tracker's package is missing."""
    from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available, "mlflow": is_mlflow_available, "wandb": is_wandb_available}
    for name in names:
        if not available[name]():
            raise ConfigError(f"output.log_with: `{name}` requested but its Python package is not installed (pip install {name})")


def make_accelerator(recipe: Recipe, run_dir: Path):
    """An Accelerator for this recipe, with the world size verified against the launcher."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import ProjectConfiguration

    train, out = recipe.train, recipe.output
    check_trackers(list(out.log_with))
    if os.environ.get("LLMOPS_VERBOSE", "0") not in {"1", "true"}:
        logging.getLogger("accelerate").setLevel(logging.WARNING)  # one INFO line per saved file otherwise
    # A previous run in this process (tests, `llmops loop`) leaves accelerate's singletons
    # configured for its precision; the process group itself (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    env_precision = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if env_precision and env_precision != "no" and env_precision != train.mixed_precision:
        raise ConfigError(
            f"train.mixed_precision is `{train.mixed_precision}` but the launcher asked for `{env_precision}` "
            "(accelerate launch --mixed_precision / config file); make them agree"
        )
    accelerator = Accelerator(
        cpu=not has_accelerator_device(),
        mixed_precision=train.mixed_precision,
        gradient_accumulation_steps=train.grad_accum,
        log_with=list(out.log_with) or None,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "trackers")),
    )
    verify_world_size(accelerator.num_processes)
    return accelerator


def verify_world_size(num_processes: int) -> None:
    """Raise when the launcher asked for a different number of processes than we have."""
    launcher_world = os.environ.get("WORLD_SIZE")
    if launcher_world is not None and int(launcher_world) != num_processes:
        raise UserError(
            f"the launcher started {launcher_world} processes but this one sees a world of {num_processes}: "
            "ranks would train independently. On CPU use `accelerate launch --multi_gpu --num_processes N`"
        )
    use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in {"1", "true", "yes"}
    if num_processes == 1 and launcher_world is None and use_cpu and os.environ.get("MASTER_ADDR"):
        raise UserError(
            "`accelerate launch --cpu --num_processes N` runs a single process, not N. "
            "For N CPU processes (gloo DDP) use `accelerate launch --multi_gpu --num_processes N`; "
            "for one process drop --num_processes"
        )
