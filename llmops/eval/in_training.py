"""Generation-based validation for the training engine (`train.generation_eval`).

A run's validation loss or preference accuracy need not track what the model is for: on the
quickstart's docstring task, DPO's held-out preference accuracy kept rising while greedy answers
collapsed into repetition (docs/preference.md). So the engine can also score greedy generations
on held-out prompts with an evaluation suite's own prompts, references and metrics, through this
harness's functions (`build_samples`, the hf backend, `score_samples`): the same numbers
`llmops eval run` would give for that split, without writing the model to disk.

The engine (same layer) cannot import this module; the caller of `llmops.train.run` passes
`generation_validator` (`llmops train`, the loop and `llmops tune` do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from llmops.errors import ConfigError

Validator = Callable[[Any, Any], dict[str, float]]


class GenerationValidator:
    """Scores a model in memory on the first `limit` prompts of a suite's `split` (None: the suite's limit)."""

    def __init__(self, suite_path: str | Path, split: str | None = "validation", limit: int | None = 64,
                 max_new_tokens: int | None = None) -> None:
        from llmops.eval.suites import load_suite

        overrides = {"max_new_tokens": max_new_tokens} if max_new_tokens else None
        self.suite, self.base_dir = load_suite(suite_path, overrides)
        if self.suite.task != "generate":
            raise ConfigError(f"train.generation_eval.suite: {suite_path} is a `{self.suite.task}` suite; "
                              "generation-based validation needs task: generate")
        self.split = split or self.suite.dataset.split
        self.limit = limit
        self._samples: list | None = None

    def samples(self, tokenizer: Any) -> list:
        """The suite's samples on this split (rendered once with the run's tokenizer)."""
        if self._samples is None:
            from llmops.eval.tasks import build_samples, load_suite_records

            limit = self.limit or self.suite.dataset.limit  # as `llmops eval run --limit` on that split
            records = load_suite_records(self.suite, self.base_dir, self.split, None)
            records = records[:limit] if limit else records
            self._samples = build_samples(self.suite, records, tokenizer, records)
        return self._samples

    def __call__(self, model: Any, tokenizer: Any) -> dict[str, float]:
        """{metric: score} of greedy generations by `model` (its mode and generation config restored)."""
        from llmops.eval.backends.hf import HFBackend
        from llmops.eval.runner import execute_samples, score_samples

        inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: LoRA layers stay active
        samples = self.samples(tokenizer)
        saved_config, was_training = inner.generation_config, inner.training
        inner.eval()
        try:
            backend = HFBackend.from_loaded(inner, tokenizer, batch_size=self.suite.generation.batch_size,
                                            max_length=self.suite.max_length)
            raw = execute_samples(backend, self.suite, samples)
        finally:
            inner.generation_config = saved_config
            inner.train(was_training)
        _, results = score_samples(self.suite, samples, raw)
        return {name: float(res.score) for name, res in results.items()}


def generation_validator(recipe: Any) -> Validator | None:
    """The validator a recipe's `train.generation_eval` asks for (None when it asks for none)."""
    spec = recipe.train.generation_eval
    if spec is None:
        return None
    return GenerationValidator(spec.suite, spec.split, spec.limit, spec.max_new_tokens)
