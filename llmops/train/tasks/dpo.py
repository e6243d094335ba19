"""The `dpo` task: DPO / IPO / cDPO / SimPO on preference pairs, on the shared engine.

Each micro-batch is one forward pass over ``[chosen; rejected]`` rows; summed
completion log-probs (fp32) go into `llmops.preference.losses.dpo_loss`. The reference is
the frozen starting policy (`llmops.preference.reference`); with
``dpo.precompute_ref_logps`` its log-probs are computed once, stored with the examples
(and cached in the run directory, so a resume does not recompute them) and the
reference is dropped. Units are preference pairs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from llmops.config.schema import Recipe
from llmops.preference.data import PairCollator
from llmops.preference.logps import sequence_logps
from llmops.preference.losses import dpo_loss
from llmops.preference.reference import ReferencePolicy
from llmops.train.modeling import disable_dropout
from llmops.train.task import LossOutput, TaskContext

log = logging.getLogger(__name__)
REF_CACHE = "ref_logps.json"


class DPOTask:
    """Direct preference optimisation of a causal LM (full or LoRA)."""

    name = "dpo"
    unit_name = "pairs"

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.cfg = recipe.dpo
        self._model: torch.nn.Module | None = None
        self.reference: ReferencePolicy | None = None
        self._describe: dict[str, Any] = {}

    @property
    def model(self) -> torch.nn.Module:
        assert self._model is not None, "setup() first"
        return self._model

    # ---------------------------------------------------------------- setup

    def setup(self, ctx: TaskContext) -> None:
        from llmops.preference.data import load_preference_splits
        from llmops.train.modeling import context_models, load_trainable_causal_lm, recipe_tokenizer

        r = self.recipe
        self.ctx = ctx
        self.models = models = context_models(r, ctx)
        self.tokenizer = recipe_tokenizer(r, models)
        self.collator = PairCollator(self.tokenizer.pad_token_id)
        with ctx.accelerator.main_process_first():  # rank 0 tokenises, the others read its cache
            splits = load_preference_splits(r, self.tokenizer, cache_dir=ctx.run_dir / "tokenized")
        self._train, self._eval = splits.train, splits.validation
        self._model = load_trainable_causal_lm(r, models)
        if self.cfg.disable_dropout:
            disable_dropout(self._model)
        if self.cfg.loss != "simpo":  # SimPO is reference-free
            self.reference = ReferencePolicy(r, self._model, ctx.prepare_frozen, models.base, models.adapter)
            if self.cfg.precompute_ref_logps:
                self._precompute(ctx, models.base.sha256, splits.fingerprints)
        self._describe = {
            "base_model_ref": r.model.base,
            "base_model_hash": models.base.sha256,
            "dataset_fingerprints": splits.fingerprints,
            "feedback_snapshot_id": splits.feedback_snapshot_id,
            "start_adapter": r.model.adapter,
            "reference_policy": self.reference.description if self.reference else None,
            "data_stats": splits.stats,
        }

    def _precompute(self, ctx: TaskContext, base_hash: str, fingerprints: dict[str, str]) -> None:
        """Reference log-probs of every pair, once; cached in the run dir keyed by data and reference."""
        from accelerate.utils import gather_object

        assert self.reference is not None
        acc = ctx.accelerator
        r = self.recipe
        key = hashlib.sha256(
            json.dumps([base_hash, r.model.adapter, r.model.dtype, fingerprints, r.data.max_length,
                        r.data.chat_template], sort_keys=True).encode()
        ).hexdigest()
        cache = Path(ctx.run_dir) / REF_CACHE
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        splits = {"train": self._train, "validation": self._eval or []}
        if cached.get("key") == key:
            log.info("reference log-probs: reusing %s", cache)
            values = cached["values"]
        else:
            policy = self._model.to(acc.device)
            values = {}
            for name, examples in splits.items():
                mine = list(range(acc.process_index, len(examples), acc.num_processes))
                local = []
                for start in range(0, len(mine), r.train.batch_size):
                    idx = mine[start : start + r.train.batch_size]
                    batch = {k: v.to(acc.device) for k, v in self.collator([examples[i] for i in idx]).items()}
                    sums, _ = self.reference.logps(policy, batch, acc.autocast())
                    c, rj = sums.chunk(2)
                    local += [(i, a, b) for i, a, b in zip(idx, c.tolist(), rj.tolist())]
                merged = sorted(gather_object(local) if acc.num_processes > 1 else local)
                values[name] = [[a, b] for _, a, b in merged]
            if acc.is_main_process:
                tmp = cache.with_suffix(".tmp")
                tmp.write_text(json.dumps({"key": key, "values": values}))
                tmp.replace(cache)
        for name, examples in splits.items():
            for ex, (c, rj) in zip(examples, values[name]):
                ex["ref_chosen_logps"], ex["ref_rejected_logps"] = c, rj
        self.reference.drop(self._model)
        log.info("reference log-probs precomputed for %d pairs; reference dropped", len(self._train))

    # ---------------------------------------------------------------- data

    def train_examples(self) -> list[dict[str, Any]]:
        return self._train

    def eval_examples(self) -> list[dict[str, Any]] | None:
        return self._eval

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        return self.collator(examples)

    def count_units(self, batch: Mapping[str, Any]) -> int:
        return int(batch["input_ids"].shape[0]) // 2

    # ---------------------------------------------------------------- loss

    def reference_logps(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) reference log-probs: precomputed, or one no-grad forward."""
        if "ref_chosen_logps" in batch:
            return batch["ref_chosen_logps"], batch["ref_rejected_logps"]
        assert self.reference is not None
        unwrapped = self.ctx.accelerator.unwrap_model(model)
        sums, _ = self.reference.logps(unwrapped, dict(batch))
        return sums.chunk(2)

    def compute_loss(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> LossOutput:
        logps, counts = sequence_logps(model, dict(batch))
        chosen, rejected = logps.chunk(2)
        n_chosen, n_rejected = counts.chunk(2)
        ref_c, ref_r = (None, None) if self.cfg.loss == "simpo" else self.reference_logps(model, batch)
        out = dpo_loss(
            chosen, rejected, ref_c, ref_r,
            loss_type=self.cfg.loss, beta=self.cfg.beta, label_smoothing=self.cfg.label_smoothing,
            simpo_gamma=self.cfg.simpo_gamma, chosen_lengths=n_chosen, rejected_lengths=n_rejected,
            rpo_alpha=self.cfg.rpo_alpha,
        )
        metrics = {
            "reward_accuracy": out.accuracies.sum(),
            "reward_margin": out.margins.sum(),
            "reward_chosen": out.chosen_rewards.sum(),
            "reward_rejected": out.rejected_rewards.sum(),
            "logps_chosen": chosen.detach().sum(),
            "logps_rejected": rejected.detach().sum(),
        }
        if out.chosen_nll is not None:
            metrics["nll_chosen"] = out.chosen_nll.sum()
        return LossOutput(out.losses.sum(), int(chosen.shape[0]), metrics)

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
            write_sidecar(out_dir, {"recipe": "dpo", "feedback_snapshot_id": self._describe.get("feedback_snapshot_id")})
        return summary

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)
