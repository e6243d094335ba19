"""The `reward` task: a Bradley-Terry reward model on preference pairs, on the shared engine.

The model is `AutoModelForSequenceClassification` with one output on the recipe's base
(an SFT adapter in ``model.adapter`` is merged in first), trained fully or with LoRA;
with LoRA the new score head is trained in full (peft ``modules_to_save``), since a
low-rank update of a freshly initialised head would make no sense. Scores are read at
each row's last real token (`llmops.preference.reward_model`). Units are pairs; the
logged ``accuracy`` is pairwise accuracy (ties count as wrong) and ``margin`` the mean
``r_chosen − r_rejected``; ``eval_accuracy`` is the same on held-out pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from llmops.config.schema import Recipe
from llmops.errors import ConfigError
from llmops.preference.data import PairCollator
from llmops.preference.losses import bradley_terry_loss
from llmops.preference.reward_model import HEAD_NAMES, load_reward_model, save_reward_model, sequence_scores
from llmops.train.task import LossOutput, TaskContext

log = logging.getLogger(__name__)


class RewardTask:
    """Pairwise (Bradley-Terry) reward-model training."""

    name = "reward"
    unit_name = "pairs"

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.cfg = recipe.reward
        self._model: torch.nn.Module | None = None
        self._describe: dict[str, Any] = {}

    @property
    def model(self) -> torch.nn.Module:
        assert self._model is not None, "setup() first"
        return self._model

    def setup(self, ctx: TaskContext) -> None:
        from llmops.preference.data import load_preference_splits
        from llmops.train.modeling import context_models, recipe_tokenizer

        r = self.recipe
        self.ctx = ctx
        self.models = models = context_models(r, ctx)
        self.tokenizer = recipe_tokenizer(r, models)
        self.collator = PairCollator(self.tokenizer.pad_token_id)
        with ctx.accelerator.main_process_first():  # rank 0 tokenises, the others read its cache
            splits = load_preference_splits(
                r, self.tokenizer, margin_column=self.cfg.margin_column, cache_dir=ctx.run_dir / "tokenized"
            )
        self._train, self._eval = splits.train, splits.validation
        self._model = self._build_model()
        self._describe = {
            "base_model_ref": r.model.base,
            "base_model_hash": models.base.sha256,
            "dataset_fingerprints": splits.fingerprints,
            "feedback_snapshot_id": splits.feedback_snapshot_id,
            "start_adapter": r.model.adapter,
            "data_stats": splits.stats,
        }

    def _build_model(self) -> torch.nn.Module:
        r = self.recipe
        m = r.model
        model = load_reward_model(
            self.models.base, m.dtype, adapter=self.models.adapter, trust_remote_code=m.trust_remote_code,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        model.config.use_cache = False
        if m.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if r.lora.enabled:
            from peft import LoraConfig, get_peft_model

            head = next((n for n in HEAD_NAMES if hasattr(model, n)), "score")
            config = LoraConfig(
                r=r.lora.r, lora_alpha=r.lora.alpha, lora_dropout=r.lora.dropout,
                target_modules=r.lora.target_modules, use_dora=r.lora.use_dora,
                task_type="SEQ_CLS", modules_to_save=[head],
            )
            try:
                model = get_peft_model(model, config)
            except ValueError as exc:
                raise ConfigError(f"lora.target_modules: {exc}") from None
            if m.gradient_checkpointing:
                model.enable_input_require_grads()
        return model

    def train_examples(self) -> list[dict[str, Any]]:
        return self._train

    def eval_examples(self) -> list[dict[str, Any]] | None:
        return self._eval

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        return self.collator(examples)

    def count_units(self, batch: Mapping[str, Any]) -> int:
        return int(batch["input_ids"].shape[0]) // 2

    def compute_loss(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> LossOutput:
        scores = sequence_scores(model, batch["input_ids"], batch["attention_mask"])
        chosen, rejected = scores.chunk(2)
        losses = bradley_terry_loss(chosen, rejected, batch.get("margin"), self.cfg.center_rewards_coefficient)
        diff = (chosen - rejected).detach()
        metrics = {
            "accuracy": (diff > 0).float().sum(),
            "margin": diff.sum(),
            "reward_chosen": chosen.detach().sum(),
            "reward_rejected": rejected.detach().sum(),
        }
        return LossOutput(losses.sum(), int(chosen.shape[0]), metrics)

    def save_final(self, model: torch.nn.Module, out_dir: Path, is_main_process: bool) -> dict[str, Any]:
        if is_main_process:
            save_reward_model(
                model, self.tokenizer, out_dir,
                {"trained_from": self.recipe.model.base, "trained_with_lora": self.recipe.lora.enabled,
                 "feedback_snapshot_id": self._describe.get("feedback_snapshot_id")},
            )
        return {"kind": "reward_model", "path": str(out_dir)}

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)
