"""Contamination of an evaluation suite by training data, and the harness's `--exclude-contaminated`.

The n-gram measure lives in `llmops.data.contamination`; this module knows suites: it
loads a suite's records exactly as the harness evaluates them and compares their text
(prompt fields and references) with a training dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.data.contamination import ContaminationReport, check_contamination
from llmops.data.formats import dataset_fingerprint
from llmops.data.loaders import load_records

DEFAULT_NGRAM = 8
DEFAULT_THRESHOLD = 0.5


def suite_records(suite_path: str | Path, limit: int | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(suite name, the records the harness would evaluate) for a suite YAML."""
    from llmops.eval.suites import load_suite
    from llmops.eval.tasks import load_suite_records

    suite, base_dir = load_suite(suite_path, {"limit": limit} if limit else None)
    return suite.name, load_suite_records(suite, base_dir, suite.dataset.split, suite.dataset.limit)


def suite_contamination(
    train_spec: str, suite_path: str | Path, n: int = DEFAULT_NGRAM, threshold: float = DEFAULT_THRESHOLD,
    limit: int | None = None, train_split: str | None = None,
) -> dict[str, Any]:
    """The contamination of one suite by one training dataset, as a JSON-ready document."""
    train = load_records(train_spec, split=train_split)
    name, items = suite_records(suite_path, limit)
    report = check_contamination(train, items, n=n, threshold=threshold)
    return {"suite": name, "suite_path": str(suite_path), "train": train_spec,
            "train_fingerprint": dataset_fingerprint(train), **report.summary(), "items": report.items}


def exclude_contaminated(
    records: list[dict[str, Any]], train_spec: str, n: int = DEFAULT_NGRAM, threshold: float = DEFAULT_THRESHOLD,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records without the contaminated ones, provenance of the exclusion) for the runner."""
    train = load_records(train_spec)
    report: ContaminationReport = check_contamination(train, records, n=n, threshold=threshold)
    drop = set(report.contaminated_indices)
    kept = [r for i, r in enumerate(records) if i not in drop]
    return kept, {"train": train_spec, "train_fingerprint": dataset_fingerprint(train), "ngram": n,
                  "threshold": threshold, "excluded": sorted(drop), "n_before": len(records), "n_after": len(kept)}


def recipe_contamination(recipe: Any) -> dict[str, Any]:
    """What a training run records in its manifest: its training data against each configured suite.

    Passed into `llmops.train.run` by the CLI (train cannot import eval: same layer).
    """
    data = recipe.data
    out: dict[str, Any] = {"ngram": data.contamination_ngram, "threshold": DEFAULT_THRESHOLD, "suites": {}}
    if not data.train:
        return {**out, "contaminated_total": 0, "skipped": "the recipe has no data.train file to compare"}
    split = "train" if str(data.train).startswith("builtin:") else None
    for suite in data.contamination_suites:
        doc = suite_contamination(str(data.train), suite, n=data.contamination_ngram, train_split=split)
        out["suites"][doc["suite"]] = {k: doc[k] for k in ("suite_path", "eval_items", "contaminated", "rate",
                                                           "contaminated_indices", "train_fingerprint")}
    out["contaminated_total"] = sum(s["contaminated"] for s in out["suites"].values())
    return out
