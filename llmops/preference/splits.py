"""Preference splits for a recipe: records → tokenised pairs, with provenance.

Shared by the `reward` and `dpo` tasks so both read feedback exports and TRL datasets
the same way and record the same lineage (dataset fingerprints, feedback snapshot id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from llmops.config.schema import Recipe
from llmops.errors import DataError
from llmops.preference.data import build_pair_examples

log = logging.getLogger(__name__)

# Synthetic pairs from the built-in docstring task (`llmops.preference.synthetic`): what the
# shipped recipes train on out of the box, without any human feedback collected yet.
SYNTHETIC_DOCSTRING_PAIRS = "builtin:docstring-prefs"


@dataclass
class PreferenceSplits:
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]] | None
    fingerprints: dict[str, str] = field(default_factory=dict)
    feedback_snapshot_id: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def load_preference_splits(recipe: Recipe, tokenizer, margin_column: str | None = None) -> PreferenceSplits:
    """Load `recipe.data` (feedback export JSONL or TRL preference data) and tokenise it."""
    from llmops.train.datasets import Splits, load_splits

    data = recipe.data
    if data.train == SYNTHETIC_DOCSTRING_PAIRS:
        splits = _synthetic_splits(recipe, Splits)
    else:
        splits = load_splits(data, recipe.train.seed, recipe.recipe)
    if splits.format != "preference":
        raise DataError(
            f"data.train: {data.train} is `{splits.format}` data; recipe `{recipe.recipe}` needs preference pairs "
            "(prompt/chosen/rejected, e.g. from `llmops feedback export`)"
        )
    train, train_stats = build_pair_examples(
        splits.train, tokenizer, data.max_length, data.chat_template, margin_column, source=str(data.train)
    )
    validation = None
    stats: dict[str, Any] = {"train_pairs": train_stats.n_examples, "train_truncated": train_stats.n_truncated}
    if splits.validation:
        validation, val_stats = build_pair_examples(
            splits.validation, tokenizer, data.max_length, data.chat_template, margin_column,
            source=str(data.validation or f"{data.train} (held out)"),
        )
        stats["validation_pairs"] = val_stats.n_examples
    if train_stats.n_truncated:
        log.warning("%d of %d pairs truncated to data.max_length=%d", train_stats.n_truncated,
                    train_stats.n_examples, data.max_length)
    return PreferenceSplits(train, validation, dict(splits.fingerprints), splits.feedback_snapshot_id, stats)


def _synthetic_splits(recipe: Recipe, splits_cls):
    """`builtin:docstring-prefs`: train/validation splits follow the docstring task's own splits."""
    from llmops.data import dataset_fingerprint
    from llmops.preference.synthetic import docstring_preferences

    data = recipe.data
    train = docstring_preferences("train", seed=recipe.train.seed)
    if data.limit is not None:
        train = train[: data.limit]
    validation = None
    if data.validation is None and data.validation_split > 0:
        n_val = max(1, int(round(len(train) * data.validation_split)))
        validation = docstring_preferences("validation", limit=n_val * 2, seed=recipe.train.seed)[:n_val]
    elif data.validation is not None:
        raise DataError(f"data.validation: not supported with {SYNTHETIC_DOCSTRING_PAIRS} (it has its own split)")
    fingerprints = {"train": dataset_fingerprint(train)}
    if validation:
        fingerprints["validation"] = dataset_fingerprint(validation)
    return splits_cls(train, validation, fingerprints, "preference", None)
