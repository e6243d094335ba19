"""Reward sources for online policy updates: a trained reward model or a Python function.

``rloo.reward_model`` is either a model reference (scored with `RewardScorer`) or
``fn:package.module:function`` naming a rule-based reward
``f(prompts: list, completions: list[str]) -> list[float]`` (format checks, unit tests,
exact-match graders; also how the tests use a toy reward).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

from llmops.errors import ConfigError

RewardFn = Callable[[Sequence[Any], Sequence[str]], Sequence[float]]


def load_reward_fn(spec: str, device: str | None = None, max_length: int = 1024, chat_template: bool = True,
                   prepare: Callable | None = None) -> RewardFn:
    """A callable scoring (prompt, completion) lists, from `spec`."""
    if spec.startswith("fn:"):
        target = spec[3:]
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"rloo.reward_model: `{spec}` must look like fn:package.module:function")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"rloo.reward_model: cannot import `{target}`: {exc}") from None
        if not callable(fn):
            raise ConfigError(f"rloo.reward_model: `{target}` is not callable")
        return fn
    from llmops.preference.reward_model import RewardScorer

    scorer = RewardScorer(spec, max_length=max_length, chat_template=chat_template, device=device)
    if prepare is not None:
        prepare(scorer.model)
    return lambda prompts, completions: scorer.score(prompts, completions)
