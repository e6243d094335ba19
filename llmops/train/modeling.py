"""Build the trainable causal LM a recipe asks for, and save it HF-loadable.

Shared by every causal-LM task (SFT, distillation, DPO): loading through model
references, gradient checkpointing, wrapping with LoRA/DoRA via peft, and writing
``final/`` (full weights or adapter, tokenizer, the ``llmops_model.json`` sidecar and,
on request, the adapter merged into the base).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from llmops.config.schema import Recipe
from llmops.errors import ConfigError
from llmops.models.loading import SIDECAR, load_causal_lm, load_tokenizer
from llmops.models.refs import ResolvedModel, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecipeModels:
    """The recipe's `model.base` and `model.adapter`, resolved once for the whole run."""

    base: ResolvedModel
    adapter: ResolvedModel | None = None


def resolve_recipe_models(recipe: Recipe) -> RecipeModels:
    m = recipe.model
    return RecipeModels(resolve(m.base, m.revision), resolve(m.adapter) if m.adapter else None)


def context_models(recipe: Recipe, ctx: Any) -> RecipeModels:
    """The engine's resolution when a task runs under it, else one made now."""
    return getattr(ctx, "models", None) or resolve_recipe_models(recipe)


def recipe_tokenizer(recipe: Recipe, models: RecipeModels | None = None) -> Any:
    """Tokenizer of the model a run starts from: the adapter's own copy when the recipe
    continues an adapter (its template may differ from the base's), else the base's."""
    models = models or resolve_recipe_models(recipe)
    return load_tokenizer(models.adapter or models.base, trust_remote_code=recipe.model.trust_remote_code)


def load_trainable_causal_lm(recipe: Recipe, models: RecipeModels | None = None) -> torch.nn.Module:
    """The recipe's model, ready to train: full weights, or a (new or resumed) LoRA adapter.

    - ``lora.enabled`` without ``model.adapter``: a fresh adapter from the ``lora`` section;
    - ``lora.enabled`` with ``model.adapter``: that adapter, trainable;
    - ``model.adapter`` without ``lora.enabled``: the adapter merged in, all weights trained.
    """
    from llmops.train.gpu import model_load_kwargs, prepare_quantized

    m, lora = recipe.model, recipe.lora
    models = models or resolve_recipe_models(recipe)
    if models.adapter is not None and lora.enabled:
        from llmops.train.lora_keys import check_continued_adapter

        check_continued_adapter(lora, models.adapter.path)
    model = load_causal_lm(
        models.base,
        dtype=m.dtype,
        adapter=models.adapter,
        trust_remote_code=m.trust_remote_code,
        trainable_adapter=lora.enabled,
        **model_load_kwargs(recipe),
    )
    model = prepare_quantized(model, recipe)
    if m.adapter and not lora.enabled:
        model = model.merge_and_unload()
        model.requires_grad_(True)  # peft froze the base when loading the adapter for inference
    model.config.use_cache = False  # the KV cache is useless in training and costs memory
    if m.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora.enabled and not m.adapter:
        model = _wrap_lora(model, recipe)
    if lora.enabled and m.gradient_checkpointing:
        model.enable_input_require_grads()
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    log.info("model %s: %s of %s parameters trainable", m.base, f"{n_train:,}", f"{n_all:,}")
    return model


def _wrap_lora(model: torch.nn.Module, recipe: Recipe) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = recipe.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        use_dora=lora.use_dora,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:  # peft names the modules it could not find
        raise ConfigError(f"lora.target_modules: {exc}") from None


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and no gradients: for teachers and reference policies."""
    model.eval()
    model.requires_grad_(False)
    return model


def write_sidecar(out_dir: Path, info: dict[str, Any]) -> None:
    """Merge `info` into ``llmops_model.json`` (what loaders read to find an adapter's base)."""
    path = out_dir / SIDECAR
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(info)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def save_causal_lm(
    model: torch.nn.Module,
    tokenizer: Any,
    out_dir: Path,
    base_ref: str,
    is_main_process: bool,
    save_merged: bool = False,
    save_function: Callable[..., Any] = torch.save,
) -> dict[str, Any]:
    """Write an HF-loadable model (or adapter) with its tokenizer; returns a manifest summary.

    `model` is whole (the engine gathers FSDP/ZeRO-3 shards first); `save_merged` merges the adapter into the base *in place* (the model
    must not be trained further) and writes it to ``out_dir/merged``.
    """
    from peft import PeftModel

    is_lora = isinstance(model, PeftModel)
    config = model.get_base_model().config if is_lora else model.config
    config.use_cache = True  # training switched it off; inference wants it back
    model.save_pretrained(
        str(out_dir), is_main_process=is_main_process, save_function=save_function
    )
    summary: dict[str, Any] = {"kind": "lora" if is_lora else "full", "path": str(out_dir)}
    if is_main_process:
        tokenizer.save_pretrained(str(out_dir))
        write_sidecar(out_dir, {"kind": summary["kind"], "base_ref": base_ref})
    if is_lora and save_merged:
        merged_dir = out_dir / "merged"
        merged = model.merge_and_unload()
        if is_main_process:
            merged.save_pretrained(str(merged_dir))
            tokenizer.save_pretrained(str(merged_dir))
            write_sidecar(merged_dir, {"kind": "full", "base_ref": base_ref, "merged_from": "adapter"})
        summary["merged_path"] = str(merged_dir)
    return summary


def disable_dropout(model: torch.nn.Module) -> int:
    """Set every dropout probability to 0 (LoRA dropout and attention-probability rates
    included); returns how many dropout modules were on.

    Preference and RL losses compare the policy's log-probs with the reference's: dropout
    in one and not the other biases the log-ratio — GPT-2 ships 0.1 everywhere, so DPO's
    first step would not even start at log 2. TRL disables it by default too."""
    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            module.p = 0.0
            n += 1
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    return n
