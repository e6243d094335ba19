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
    from accelerate.utils import InitProcessGroupKwargs, ProjectConfiguration

    train, out = recipe.train, recipe.output
    # The recipe owns accumulation: accelerate would otherwise take the launcher's
    # (ACCELERATE_GRADIENT_ACCUMULATION_STEPS, e.g. a DeepSpeed config's 4) over ours.
    launcher_accum = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    if launcher_accum not in (None, "", "auto") and int(launcher_accum) != train.grad_accum:
        log.warning(
            "the launcher asked for gradient_accumulation_steps=%s; using the recipe's train.grad_accum=%d",
            launcher_accum, train.grad_accum,
        )
    os.environ["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] = str(train.grad_accum)
    check_trackers(list(out.log_with))
    if os.environ.get("LLMOPS_VERBOSE", "0") not in {"1", "true"}:
        logging.getLogger("accelerate").setLevel(logging.WARNING)  # one INFO line per saved file otherwise
    # A previous run in this process (tests, `llmops loop`) leaves accelerate's singletons
    # configured for its precision; the process group itself (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    precision = effective_mixed_precision(train.mixed_precision)
    ds_plugin = recipe_deepspeed_plugin(recipe)
    ds_cpu = ds_plugin is not None and not has_accelerator_device() and deepspeed_on_cpu()
    # DeepSpeed's CPU accelerator: accelerate must not be told cpu=True (it would drop DeepSpeed),
    # and without an explicit backend it initialises DeepSpeed's gloo group yet records a world of 1
    kwargs = [InitProcessGroupKwargs(backend="gloo")] if ds_cpu else []
    accelerator = Accelerator(
        cpu=not has_accelerator_device() and not ds_cpu,
        kwargs_handlers=kwargs,
        mixed_precision=precision,
        gradient_accumulation_steps=train.grad_accum,
        deepspeed_plugin=ds_plugin,
        log_with=list(out.log_with) or None,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "trackers")),
    )
    if ds_plugin is not None:
        fill_deepspeed_config(ds_plugin, recipe)
    _fsdp_on_cpu(accelerator)
    verify_world_size(accelerator.num_processes)
    return accelerator


def effective_mixed_precision(recipe_value: str | None) -> str:
    """The recipe's precision, else the launcher's (``accelerate launch --mixed_precision``
    or its config file), else ``no``; a recipe that disagrees with the launcher is refused."""
    env = os.environ.get("ACCELERATE_MIXED_PRECISION") or None
    if recipe_value is None:
        return env or "no"
    if env and env != "no" and env != recipe_value:
        raise ConfigError(
            f"train.mixed_precision is `{recipe_value}` but the launcher asked for `{env}` "
            "(accelerate launch --mixed_precision / config file); make them agree, or leave "
            "train.mixed_precision unset to take the launcher's"
        )
    return recipe_value


def deepspeed_on_cpu() -> bool:
    """DeepSpeed's own CPU accelerator was asked for (``DS_ACCELERATOR=cpu``): accelerate then
    runs DeepSpeed on CPU, provided the Accelerator is not created with ``cpu=True``."""
    return os.environ.get("DS_ACCELERATOR", "").lower() == "cpu"


def recipe_deepspeed_plugin(recipe: Recipe):
    """Under a DeepSpeed launch, a plugin carrying the recipe's accumulation and clipping.

    Built here (not from the launcher's environment alone) so that DeepSpeed's config
    never disagrees with the recipe: the launcher's `gradient_accumulation_steps` and
    `gradient_clipping` are replaced by ``train.grad_accum`` and ``train.max_grad_norm``.
    """
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return None
    if not has_accelerator_device() and not deepspeed_on_cpu():
        # accelerate drops DeepSpeed when cpu=True and would run plain DDP without a word
        raise ConfigError(
            "a DeepSpeed launch needs GPUs (accelerate ignores DeepSpeed on CPU), or DeepSpeed's CPU "
            "accelerator: export DS_ACCELERATOR=cpu (gloo; builds a C++ op with g++ on first use); "
            "else on CPU use recipes/accelerate/fsdp.yaml (FSDP2 over gloo) or cpu_2proc.yaml (DDP)"
        )
    from accelerate.utils import DeepSpeedPlugin

    train = recipe.train
    clip = os.environ.get("ACCELERATE_GRADIENT_CLIPPING")
    wanted = float(train.max_grad_norm or 0.0)
    if clip not in (None, "", "auto", "none") and float(clip) != wanted:
        log.warning("the launcher asked for gradient_clipping=%s; using the recipe's train.max_grad_norm=%s", clip, train.max_grad_norm)
    return DeepSpeedPlugin(gradient_accumulation_steps=train.grad_accum, gradient_clipping=wanted)


def fill_deepspeed_config(plugin, recipe: Recipe) -> dict:
    """Write the recipe's micro-batch, accumulation and clipping into DeepSpeed's config.

    accelerate only fills ``train_micro_batch_size_per_gpu: auto`` from a DataLoader, and
    the engine batches without one, so ``prepare`` would refuse; 0.0 disables clipping.
    """
    train = recipe.train
    config = plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = train.batch_size
    config["gradient_accumulation_steps"] = train.grad_accum
    config["gradient_clipping"] = float(train.max_grad_norm or 0.0)
    config.pop("train_batch_size", None)  # derived by accelerate from the three above
    return config


def _fsdp_on_cpu(accelerator) -> None:
    """Honour an FSDP launch on a machine without GPUs (gloo) instead of silently running DDP.

    accelerate 1.15 only turns a launch into FSDP for GPU-like device types; with
    ``cpu=True`` it stays MULTI_CPU (plain DDP, unsharded) without a word. torch's FSDP2
    (`fully_shard`) works on CPU over gloo, so the state is switched to FSDP with the
    launcher's plugin: the same code path as on GPUs, testable here.
    """
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = accelerator.state
    wants_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if not (wants_fsdp and state.distributed_type == DistributedType.MULTI_CPU):
        return
    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise ConfigError("FSDP on CPU needs fsdp_version: 2 in the accelerate config (FSDP1 requires GPUs)")
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    from accelerate.state import PartialState

    # AcceleratorState() re-copies PartialState's fields on every construction: set both
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = plugin
    log.info("FSDP%d over gloo on CPU", plugin.fsdp_version)


def verify_accumulation(accelerator, recipe: Recipe) -> None:
    """After ``prepare``: the accumulation accelerate/DeepSpeed will apply is the recipe's."""
    want = recipe.train.grad_accum
    got = [("accelerate", accelerator.gradient_accumulation_steps)]
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:
        got.append(("deepspeed", plugin.deepspeed_config.get("gradient_accumulation_steps")))
        got.append(("deepspeed micro-batch", plugin.deepspeed_config.get("train_micro_batch_size_per_gpu")))
    for name, value in got:
        expected = recipe.train.batch_size if "micro-batch" in name else want
        if value != expected:
            raise RuntimeError(f"{name} uses {value} where the recipe says {expected}; gradients would be scaled wrongly")


def is_sharded(accelerator) -> bool:
    """Parameters live as shards (FSDP, DeepSpeed ZeRO-3): saving and hashing must gather them."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


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
