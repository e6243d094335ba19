"""The `rloo` task: online REINFORCE with a leave-one-out baseline (RLOO) and a KL penalty.

Per micro-batch of prompts: sample ``k`` responses per prompt from the current policy,
score them (reward model or rule-based function, `llmops.preference.rewards`), subtract
``kl_coef · Σ_t log π/π_ref`` (the frozen starting policy, see
`llmops.preference.reference`), and use the mean of the prompt's *other* k−1 samples as
the baseline (Ahmadian et al. 2024). The loss is ``−A · log π(y|x)`` summed over the
sampled responses, which are the units. Sampling uses the global torch RNG the engine
checkpoints, so a resumed run samples exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from llmops.config.schema import Recipe
from llmops.errors import ConfigError, DataError
from llmops.preference.data import PairTokenizer
from llmops.preference.logps import sequence_logps
from llmops.preference.losses import rloo_advantages, rloo_policy_loss
from llmops.preference.reference import ReferencePolicy
from llmops.train.modeling import disable_dropout
from llmops.train.task import LossOutput, TaskContext

log = logging.getLogger(__name__)
DEFAULT_PROMPTS = "builtin:docstrings"


def record_prompt(record: dict[str, Any], where: str) -> Any:
    """The prompt of any record format (prompt/completion, preference, chat)."""
    if "prompt" in record:
        return record["prompt"]
    messages = record.get("messages")
    if isinstance(messages, list) and messages:
        last_assistant = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
        if last_assistant == 0:
            raise DataError(f"{where}: chat record has no turn before the assistant's")
        return messages[:last_assistant]
    raise DataError(f"{where}: needs a `prompt` (or chat `messages`) to sample responses for")


class RLOOTask:
    """Online policy improvement against a reward, with k samples per prompt."""

    name = "rloo"
    unit_name = "responses"

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.cfg = recipe.rloo
        if not self.cfg.reward_model:
            raise ConfigError("rloo.reward_model: required (a reward model reference or fn:module:function)")
        self._model: torch.nn.Module | None = None
        self.reference: ReferencePolicy | None = None
        self._describe: dict[str, Any] = {}

    @property
    def model(self) -> torch.nn.Module:
        assert self._model is not None, "setup() first"
        return self._model

    def setup(self, ctx: TaskContext) -> None:
        from llmops.data import dataset_fingerprint, load_records
        from llmops.preference.rewards import load_reward_fn
        from llmops.train.modeling import context_models, load_trainable_causal_lm, recipe_tokenizer

        from llmops.train.accel import is_sharded

        r = self.recipe
        self.ctx = ctx
        self._synced = ctx.accelerator.num_processes > 1 and is_sharded(ctx.accelerator)
        self.models = models = context_models(r, ctx)
        self.tokenizer = recipe_tokenizer(r, models)
        budget = r.data.max_length - self.cfg.max_new_tokens
        if budget < 8:
            raise ConfigError(
                f"data.max_length ({r.data.max_length}) must exceed rloo.max_new_tokens ({self.cfg.max_new_tokens}) by >= 8"
            )
        self.prompter = PairTokenizer(self.tokenizer, budget, r.data.chat_template)
        spec = r.data.train or DEFAULT_PROMPTS
        builtin = spec.startswith("builtin:")
        train = load_records(spec, split="train" if builtin else None, limit=r.data.limit)
        validation = None
        if r.data.validation or builtin:
            vspec = r.data.validation or spec
            validation = load_records(vspec, split="validation" if vspec.startswith("builtin:") else None, limit=16)
        self._train = self._examples(train, spec)
        self._eval = self._examples(validation, r.data.validation or spec) if validation else None
        self._model = load_trainable_causal_lm(r, models)
        if self.cfg.disable_dropout:
            disable_dropout(self._model)
        if self.cfg.kl_coef > 0:
            self.reference = ReferencePolicy(r, self._model, ctx.prepare_frozen, models.base, models.adapter)
        self.reward_fn = load_reward_fn(
            self.cfg.reward_model, device=str(ctx.accelerator.device), max_length=r.data.max_length,
            chat_template=r.data.chat_template, prepare=ctx.prepare_frozen,
        )
        from llmops.data.splits import feedback_snapshot_id

        self._describe = {
            "base_model_ref": r.model.base,
            "base_model_hash": models.base.sha256,
            "dataset_fingerprints": {"train": dataset_fingerprint(train)},
            "feedback_snapshot_id": None if builtin else feedback_snapshot_id(spec),
            "start_adapter": r.model.adapter,
            "reward_model": self.cfg.reward_model,
            "reference_policy": self.reference.description if self.reference else None,
        }

    def _examples(self, records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
        out = []
        for i, rec in enumerate(records):
            prompt = record_prompt(rec, f"{source}: row {i + 1}")
            ids = self.prompter.prompt_ids(prompt)[-self.prompter.max_length :]
            out.append({"prompt": prompt, "prompt_ids": ids})
        if not out:
            raise DataError(f"{source}: no prompts")
        return out

    def train_examples(self) -> list[dict[str, Any]]:
        return self._train

    def eval_examples(self) -> list[dict[str, Any]] | None:
        return self._eval

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Left-padded prompts (generation appends on the right)."""
        pad = self.tokenizer.pad_token_id
        width = max(len(e["prompt_ids"]) for e in examples)
        ids = [[pad] * (width - len(e["prompt_ids"])) + e["prompt_ids"] for e in examples]
        mask = [[0] * (width - len(e["prompt_ids"])) + [1] * len(e["prompt_ids"]) for e in examples]
        return {
            "prompt_ids": torch.tensor(ids, dtype=torch.long),
            "prompt_mask": torch.tensor(mask, dtype=torch.long),
            "prompts": [e["prompt"] for e in examples],
        }

    def count_units(self, batch: Mapping[str, Any]) -> int:
        return int(batch["prompt_ids"].shape[0]) * self.cfg.k

    # ---------------------------------------------------------------- rollout and loss

    def generation_config(self):
        """Sampling exactly from the policy at `rloo.temperature`: a fresh config, so nothing the
        model's own generation_config.json sets (repetition_penalty, top_k, ...) changes it."""
        from transformers import GenerationConfig

        tok = self.tokenizer
        # transformers fills a passed config's unset (None) fields from the model's own config,
        # so every logits processor that would change the distribution is set to its no-op.
        return GenerationConfig(do_sample=True, temperature=self.cfg.temperature, top_k=0, top_p=1.0,
                                typical_p=1.0, min_p=0.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
                                repetition_penalty=1.0, encoder_repetition_penalty=1.0, no_repeat_ngram_size=0,
                                min_new_tokens=0, min_length=0, num_beams=1,
                                max_new_tokens=self.cfg.max_new_tokens, pad_token_id=tok.pad_token_id,
                                eos_token_id=tok.eos_token_id, use_cache=True)

    @torch.no_grad()
    def sample(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """k sampled responses per prompt as a scored batch: ids, masks, completion mask."""
        unwrapped = self.ctx.accelerator.unwrap_model(model)
        k, tok = self.cfg.k, self.tokenizer
        prompt_ids = batch["prompt_ids"].repeat_interleave(k, dim=0)
        prompt_mask = batch["prompt_mask"].repeat_interleave(k, dim=0)
        was_training = unwrapped.training
        unwrapped.eval()
        try:
            # sharded weights are gathered layer by layer in forward: every rank must run
            # the same number of forwards even when its samples end early
            out = unwrapped.generate(input_ids=prompt_ids, attention_mask=prompt_mask,
                                     generation_config=self.generation_config(), synced_gpus=self._synced)
        finally:
            unwrapped.train(was_training)
        completion = out[:, prompt_ids.shape[1] :]
        # Keep tokens up to and including the first eos; the rest is padding.
        is_eos = completion == tok.eos_token_id
        after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0
        comp_mask = (~after_eos).long()
        completion = completion.masked_fill(after_eos, tok.pad_token_id)
        return {
            "input_ids": torch.cat([prompt_ids, completion], dim=1),
            "attention_mask": torch.cat([prompt_mask, comp_mask], dim=1),
            "completion_mask": torch.cat([torch.zeros_like(prompt_mask), comp_mask], dim=1),
        }

    def compute_loss(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> LossOutput:
        k = self.cfg.k
        rollout = self.sample(model, batch)
        temp = self.cfg.temperature
        logps, lengths = sequence_logps(model, rollout, temp)
        if self.reference is not None:
            ref_logps, _ = self.reference.logps(self.ctx.accelerator.unwrap_model(model), rollout, temperature=temp)
        else:
            ref_logps = logps.detach()
        prompt_len = batch["prompt_ids"].shape[1]
        texts = []
        for row, mask in zip(rollout["input_ids"][:, prompt_len:], rollout["completion_mask"][:, prompt_len:]):
            texts.append(self.tokenizer.decode(row[mask.bool()].tolist(), skip_special_tokens=True))
        prompts = [p for p in batch["prompts"] for _ in range(k)]
        rewards = torch.tensor([float(x) for x in self.reward_fn(prompts, texts)], device=logps.device)
        n = batch["prompt_ids"].shape[0]
        advantages, kl = rloo_advantages(
            rewards.view(n, k), logps.detach().view(n, k), ref_logps.view(n, k), self.cfg.kl_coef
        )
        losses = rloo_policy_loss(advantages, logps)
        metrics = {
            "reward": rewards.sum(),
            "kl": kl.sum(),
            "response_tokens": lengths.float().sum(),
        }
        return LossOutput(losses.sum(), n * k, metrics)

    # ---------------------------------------------------------------- save

    def save_final(self, model: torch.nn.Module, out_dir: Path, is_main_process: bool) -> dict[str, Any]:
        from llmops.train.modeling import save_causal_lm, write_sidecar
        from llmops.train.tasks.sft import portable_ref

        if self.reference is not None:
            self.reference.before_save(model)
        summary = save_causal_lm(
            model, self.tokenizer, out_dir, base_ref=portable_ref(self.models.base),
            is_main_process=is_main_process, save_merged=self.recipe.output.save_merged,
            save_function=self.ctx.accelerator.save,
        )
        if is_main_process:
            write_sidecar(out_dir, {"recipe": "rloo", "reward_model": self.cfg.reward_model})
        return summary

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)
