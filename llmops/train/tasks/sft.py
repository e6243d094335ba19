"""Supervised fine-tuning (full or LoRA): next-token cross-entropy on the completion tokens.

Examples come from `llmops.data` (chat template, prompt tokens masked with -100, the
end-of-turn token trained) and are padded per micro-batch, or packed several to a row
with attention that never crosses examples when ``data.packing`` is on.
`SFTData` is shared with the distillation task, which trains on the same examples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from llmops.config.schema import Recipe
from llmops.models.refs import ResolvedModel
from llmops.data.splits import load_splits
from llmops.train.losses import causal_lm_loss_sum, count_supervised_tokens
from llmops.train.modeling import context_models, load_trainable_causal_lm, recipe_tokenizer, save_causal_lm
from llmops.train.task import LossOutput, TaskContext

log = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")


def portable_ref(model: ResolvedModel) -> str:
    """A reference that names the same weights later and elsewhere: local paths become
    absolute, and a registry alias (which moves) is pinned to the version it points at."""
    if model.kind == "path":
        return str(model.path.resolve())
    if model.kind == "registry":
        return f"registry:{model.registry_name}/{model.registry_version}"
    return model.ref


@dataclass
class SFTData:
    """Tokenised (and optionally packed) train/validation examples plus their provenance."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]] | None
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, recipe: Recipe, tokenizer: Any, cache_dir: Path | None = None, model: torch.nn.Module | None = None
    ) -> "SFTData":
        """`cache_dir`: tokenise once per run (see `llmops.data.token_cache`); `model` picks
        the packing mode (padding-free or 4D mask, `packed_collator`)."""
        from llmops.data import SFTCollator, build_sft_examples, pack_examples
        from llmops.data.token_cache import cache_key, load_or_build, tokenizer_fingerprint

        data = recipe.data
        splits = load_splits(data, recipe.train.seed, recipe.recipe)

        def tokenise() -> tuple[list, list | None]:
            train, stats = build_sft_examples(splits.train, tokenizer, data.max_length, chat_template=data.chat_template)
            log.info("train examples: %s", stats)
            validation = None
            if splits.validation:
                validation, _ = build_sft_examples(
                    splits.validation, tokenizer, data.max_length, chat_template=data.chat_template
                )
            if data.packing:
                train = pack_examples(train, data.max_length)
                validation = pack_examples(validation, data.max_length) if validation else None
            return train, validation

        key = cache_key(task="sft", fingerprints=splits.fingerprints, tokenizer=tokenizer_fingerprint(tokenizer),
                        max_length=data.max_length, chat_template=data.chat_template, packing=data.packing)
        train, validation = load_or_build(cache_dir, key, tokenise)
        if data.packing:
            collate = packed_collator(tokenizer.pad_token_id, model)
        else:
            collate = SFTCollator(tokenizer.pad_token_id)
        provenance = {
            "dataset_fingerprints": splits.fingerprints,
            "feedback_snapshot_id": splits.feedback_snapshot_id,
            "data_format": splits.format,
            "n_train_records": len(splits.train),
            "n_train_examples": len(train),
            "n_validation_examples": len(validation or []),
        }
        return cls(train, validation, collate, provenance)


def packed_collator(pad_token_id: int, model: torch.nn.Module | None) -> Any:
    """Padding-free (``position_ids``) when the model supports it, else the 4D mask in the
    dtype the weights actually have (``dtype: auto`` may load bf16: never an fp32 mask)."""
    from llmops.data import PackedCollator
    from llmops.train.gpu import model_dtype, packing_mask

    if model is None:
        return PackedCollator(pad_token_id)
    mode = packing_mask(model)
    log.info("packing: %s", "padding-free (position_ids)" if mode == "position_ids" else "block-diagonal 4D mask")
    return PackedCollator(pad_token_id, mask=mode, mask_dtype=model_dtype(model))


class SFTTask:
    """Causal-LM cross-entropy over supervised tokens (see `llmops.train.task.Task`)."""

    name = "sft"
    unit_name = "tokens"

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self._model: torch.nn.Module | None = None
        self._base_hash: str | None = None

    @property
    def model(self) -> torch.nn.Module:
        assert self._model is not None, "setup() first"
        return self._model

    def setup(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.models = models = context_models(self.recipe, ctx)
        with ctx.accelerator.main_process_first():  # builds/downloads once, others reuse it
            self.tokenizer = recipe_tokenizer(self.recipe, models)
        # every rank together: under ZeRO-3 building the model is a collective (deepspeed.zero.Init),
        # which deadlocks inside main_process_first (measured with DS_ACCELERATOR=cpu)
        self._model = load_trainable_causal_lm(self.recipe, models)
        with ctx.accelerator.main_process_first():  # rank 0 tokenises, the others read its cache
            self.data = SFTData.build(self.recipe, self.tokenizer, cache_dir=ctx.run_dir / "tokenized", model=self._model)

    def train_examples(self) -> Sequence[dict[str, Any]]:
        return self.data.train

    def eval_examples(self) -> Sequence[dict[str, Any]] | None:
        return self.data.validation

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.data.collate(examples)

    def count_units(self, batch: Mapping[str, Any]) -> int:
        return count_supervised_tokens(batch["labels"])

    def compute_loss(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> LossOutput:
        # no KV cache: with one, transformers ignores packed position_ids boundaries
        logits = model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}, use_cache=False).logits
        loss_sum, n_tokens = causal_lm_loss_sum(logits, batch["labels"])
        return LossOutput(loss_sum, n_tokens)

    def save_final(self, model: torch.nn.Module, out_dir: Path, is_main_process: bool) -> dict[str, Any]:
        return save_causal_lm(
            model,
            self.tokenizer,
            out_dir,
            base_ref=portable_ref(self.models.base),
            is_main_process=is_main_process,
            save_merged=self.recipe.output.save_merged,
            save_function=self.ctx.accelerator.save,
        )

    def base_model_hash(self) -> str:
        if self._base_hash is None:
            self._base_hash = self.models.base.sha256
        return self._base_hash

    def describe(self) -> dict[str, Any]:
        m = self.recipe.model
        return {
            "base_model_ref": m.base,
            "base_model_hash": self.base_model_hash(),
            "adapter_ref": m.adapter,
            **self.data.provenance,
        }
