"""Knowledge distillation: a frozen teacher's token distributions teach the student.

The student (full or LoRA, from ``model``/``lora``) trains on the SFT examples with
``α·T²·D(teacher‖student) + (1-α)·CE`` (`llmops.train.losses.distillation_loss_sum`),
D being forward KL, reverse KL or the generalised JSD(β). The teacher is loaded in eval
mode without gradients and never checkpointed (it comes back from its reference).
Teacher and student must share the tokenizer's vocabulary; extra embedding rows
(padding to a multiple of 64/128) are sliced off, a real mismatch is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from llmops.config.schema import Recipe
from llmops.errors import ConfigError
from llmops.models.loading import load_causal_lm, load_tokenizer
from llmops.models.refs import resolve
from llmops.train.losses import align_vocab, distillation_loss_sum
from llmops.train.task import LossOutput, TaskContext
from llmops.train.tasks.sft import MODEL_INPUTS, SFTTask


def check_same_vocabulary(student_tok: Any, teacher_tok: Any, student_ref: str, teacher_ref: str) -> None:
    """Raise a ConfigError naming the first differing token when the vocabularies differ."""
    s_vocab, t_vocab = student_tok.get_vocab(), teacher_tok.get_vocab()
    if s_vocab == t_vocab:
        return
    differing = sorted(set(s_vocab.items()) ^ set(t_vocab.items()), key=lambda kv: kv[1])[:3]
    raise ConfigError(
        f"distill.teacher: {teacher_ref} ({len(t_vocab)} tokens) and model.base {student_ref} "
        f"({len(s_vocab)} tokens) do not share a vocabulary (e.g. {differing}); distillation needs the same tokenizer"
    )


class DistillTask:
    """Distillation on top of the SFT data and student (composition, not inheritance)."""

    name = "distill"
    unit_name = "tokens"

    def __init__(self, recipe: Recipe):
        assert recipe.distill is not None
        self.recipe = recipe
        self.cfg = recipe.distill
        self.student = SFTTask(recipe)
        self._teacher_hash: str | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.student.model

    def setup(self, ctx: TaskContext) -> None:
        self.student.setup(ctx)
        m = self.recipe.model
        with ctx.accelerator.main_process_first():
            self.teacher_model = resolve(self.cfg.teacher)
            teacher_tok = load_tokenizer(self.teacher_model, trust_remote_code=m.trust_remote_code)
        # outside main_process_first: building a model is a collective under ZeRO-3 (see sft.py)
        teacher = load_causal_lm(self.teacher_model, dtype=m.dtype, trust_remote_code=m.trust_remote_code)
        check_same_vocabulary(self.student.tokenizer, teacher_tok, m.base, self.cfg.teacher)
        self.vocab_size = len(self.student.tokenizer)
        self.teacher = ctx.prepare_frozen(teacher)

    def train_examples(self) -> Sequence[dict[str, Any]]:
        return self.student.train_examples()

    def eval_examples(self) -> Sequence[dict[str, Any]] | None:
        return self.student.eval_examples()

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.student.collate(examples)

    def count_units(self, batch: Mapping[str, Any]) -> int:
        return self.student.count_units(batch)

    def compute_loss(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> LossOutput:
        # no KV cache: with one, transformers ignores packed position_ids boundaries
        inputs = {**{k: batch[k] for k in MODEL_INPUTS if k in batch}, "use_cache": False}
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        student_logits = model(**inputs).logits
        student_logits, teacher_logits = align_vocab(student_logits, teacher_logits, self.vocab_size)
        loss_sum, n_tokens, parts = distillation_loss_sum(
            student_logits,
            teacher_logits,
            batch["labels"],
            kind=self.cfg.loss,
            temperature=self.cfg.temperature,
            alpha=self.cfg.alpha,
            beta=self.cfg.beta,
        )
        return LossOutput(loss_sum, n_tokens, parts)

    def save_final(self, model: torch.nn.Module, out_dir: Path, is_main_process: bool) -> dict[str, Any]:
        return self.student.save_final(model, out_dir, is_main_process)

    def describe(self) -> dict[str, Any]:
        if self._teacher_hash is None:
            self._teacher_hash = self.teacher_model.sha256
        return {**self.student.describe(), "teacher_ref": self.cfg.teacher, "teacher_hash": self._teacher_hash}
