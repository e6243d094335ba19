"""The `rloo` task: online REINFORCE with a leave-one-out baseline (RLOO) and a KL penalty.

Per micro-batch of prompts: sample ``k`` responses per prompt from the current policy,
score them (reward model or rule-based function, `llmops.preference.rewards`), subtract
``kl_coef · Σ_t log π/π_ref`` (the frozen starting policy, see
`llmops.preference.reference`), and use the mean of the prompt's *other* k−1 samples as
the baseline (Ahmadian et al. 2024). The loss is ``−A · log π(y|x)`` summed over the
sampled responses, which are the units. Sampling (`llmops.preference.sampling`) draws each
response's noise from a generator keyed by (seed, micro-batch position, example, sample):
a resumed run, and a run on any number of processes, samples exactly what the
uninterrupted single-process run would have; validation samples with the same noise
at every evaluation (common random numbers, so eval_reward moves only with the policy).
"""

from __future__ import annotations

import json
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
        # sharded ranks gather weights in every forward: they must run the same number
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
        train, validation = self._load_prompts(spec)
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
            "dataset_fingerprints": {"train": dataset_fingerprint(train),
                                     **({"validation": dataset_fingerprint(validation)} if validation else {})},
            "feedback_snapshot_id": None if spec.startswith("builtin:") else feedback_snapshot_id(spec),
            "start_adapter": r.model.adapter,
            "reward_model": self.cfg.reward_model,
            "reference_policy": self.reference.description if self.reference else None,
        }

    def _load_prompts(self, spec: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Training and held-out prompt records, resolved like `llmops.data.splits`: data.validation;
        else a builtin's validation split (16 prompts: each costs k generations); else
        ``data.validation_split`` of the prompts, held out by prompt (the pairs of a preference
        export that share a prompt stay on one side). ``validation_split: 0`` means none."""
        from llmops.data import load_records
        from llmops.data.splits import hold_out

        data, builtin = self.recipe.data, spec.startswith("builtin:")
        validation = None
        if data.validation:
            vspec = data.validation
            validation = load_records(vspec, split="validation" if vspec.startswith("builtin:") else None)
        elif data.validation_split > 0 and builtin:
            validation = load_records(spec, split="validation", limit=16)
        if data.validation or builtin or data.validation_split == 0:
            return load_records(spec, split="train" if builtin else None, limit=data.limit), validation

        def prompt_key(record: dict[str, Any]) -> str:
            return json.dumps(record_prompt(record, spec), sort_keys=True)

        train, validation = hold_out(load_records(spec), data.validation_split, self.recipe.train.seed, key=prompt_key)
        if not validation:
            raise DataError(f"{spec}: data.validation_split={data.validation_split} needs at least 2 distinct prompts "
                            "(or set data.validation_split: 0)")
        return train[: data.limit] if data.limit is not None else train, validation

    def _examples(self, records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
        out = []
        for i, rec in enumerate(records):
            prompt = record_prompt(rec, f"{source}: row {i + 1}")
            ids = self.prompter.prompt_ids(prompt)[-self.prompter.max_length :]
            out.append({"prompt": prompt, "prompt_ids": ids, "index": i})
        if not out:
            raise DataError(f"{source}: no prompts")
        return out

    def train_examples(self) -> list[dict[str, Any]]:
        return self._train

    def eval_examples(self) -> list[dict[str, Any]] | None:
        return self._eval

    def collate_at(self, examples: list[dict[str, Any]], position: int) -> dict[str, Any]:
        """A training micro-batch; its samples are keyed on the micro-batch position."""
        return {**self.collate(examples), "noise_key": f"train/{position}"}

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Left-padded prompts (generation appends on the right); validation batches
        sample with the same noise at every evaluation."""
        pad = self.tokenizer.pad_token_id
        width = max(len(e["prompt_ids"]) for e in examples)
        ids = [[pad] * (width - len(e["prompt_ids"])) + e["prompt_ids"] for e in examples]
        mask = [[0] * (width - len(e["prompt_ids"])) + [1] * len(e["prompt_ids"]) for e in examples]
        return {
            "prompt_ids": torch.tensor(ids, dtype=torch.long),
            "prompt_mask": torch.tensor(mask, dtype=torch.long),
            "prompts": [e["prompt"] for e in examples],
            "indices": [e["index"] for e in examples],
            "noise_key": "eval",
        }

    def count_units(self, batch: Mapping[str, Any]) -> int:
        return int(batch["prompt_ids"].shape[0]) * self.cfg.k

    # ---------------------------------------------------------------- rollout and loss

    def noise_seeds(self, batch: Mapping[str, Any]) -> list[int]:
        """One sampling seed per response row (k per prompt, prompt-major)."""
        from llmops.preference.sampling import key_seed

        seed, key = self.recipe.train.seed, batch["noise_key"]
        return [key_seed(seed, key, index, j) for index in batch["indices"] for j in range(self.cfg.k)]

    def _others_unfinished(self, local: bool) -> bool:
        acc = self.ctx.accelerator
        return bool(acc.reduce(torch.tensor(float(local), device=acc.device), reduction="sum").item() > 0)

    @torch.no_grad()
    def sample(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """k sampled responses per prompt as a scored batch: ids, masks, completion mask."""
        from accelerate.utils import DistributedType

        from llmops.preference.sampling import sample_completions

        acc = self.ctx.accelerator
        # FSDP2: the prepared model is the sharding root and must be what is called; DDP's
        # wrapper would sync buffers per forward, so the plain module samples there
        policy = model if acc.distributed_type == DistributedType.FSDP else acc.unwrap_model(model)
        k, tok = self.cfg.k, self.tokenizer
        prompt_ids = batch["prompt_ids"].repeat_interleave(k, dim=0)
        prompt_mask = batch["prompt_mask"].repeat_interleave(k, dim=0)
        was_training = policy.training
        policy.eval()
        try:
            completion = sample_completions(
                policy, prompt_ids, prompt_mask, self.noise_seeds(batch), max_new_tokens=self.cfg.max_new_tokens,
                temperature=self.cfg.temperature, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                others_unfinished=self._others_unfinished if self._synced else None,
            )
        finally:
            policy.train(was_training)
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
