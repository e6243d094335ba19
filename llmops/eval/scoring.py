"""Score existing outputs (`llmops eval score`): read segment files, compute, format.

Segment files are plain text, one segment per line (read like sacrebleu reads them:
universal newlines, only the line terminator stripped), or JSONL with a ``text`` field
for segments that contain newlines (ROUGE-Lsum). Reference files are *streams*: the
k-th file holds the k-th reference of every segment, as in sacrebleu's CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmops.errors import DataError
from llmops.eval.metrics import build_metric
from llmops.eval.metrics.base import TextMetric
from llmops.eval.stats import bootstrap_ci


def read_segments(path: str | Path) -> list[str]:
    """Segments of a .jsonl file (``text`` field) or of a plain text file (one per line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        from llmops.data.loaders import iter_jsonl

        segments = []
        for lineno, row in iter_jsonl(path):
            if not isinstance(row.get("text"), str):
                raise DataError(f"{path}:{lineno}: expected an object with a string `text` field")
            segments.append(row["text"])
    else:
        try:
            with path.open(encoding="utf-8") as fh:
                segments = [line[:-1] if line.endswith("\n") else line for line in fh]
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not segments:
        raise DataError(f"{path}: empty file, nothing to score")
    return segments


def load_pairs(predictions: str | Path, references: list[str | Path]) -> tuple[list[str], list[list[str]]]:
    """Predictions and per-sample reference lists; counts must agree file by file."""
    if not references:
        raise DataError("at least one --references file is required")
    preds = read_segments(predictions)
    streams = [read_segments(r) for r in references]
    for path, stream in zip(references, streams):
        if len(stream) != len(preds):
            raise DataError(
                f"{path} has {len(stream)} segments but {predictions} has {len(preds)}: "
                "each reference file must hold one reference per prediction, in the same order"
            )
    return preds, [list(refs) for refs in zip(*streams)]


def score_texts(
    metric_name: str, predictions: list[str], references: list[list[str]], options: dict[str, Any] | None = None,
    ci: bool = False, seed: int = 0, n_resamples: int = 1000,
) -> dict[str, Any]:
    """Score predictions; the result mirrors the reference implementation's output.

    sacrebleu metrics return sacrebleu's JSON fields (name, score, signature,
    verbose_score, ...) with the unrounded score; ROUGE returns ``{rouge1: F, ...}``;
    exact_match / token_f1 return ``{name: value}``. ``ci`` adds a ``ci95`` entry.
    """
    metric = build_metric(metric_name, **(options or {}))
    if not isinstance(metric, TextMetric):
        raise DataError(f"metric `{metric_name}` needs model log-likelihoods; use `llmops eval run` with a suite")
    results = metric.compute(predictions, references)
    if hasattr(metric, "corpus_score") and len(results) == 1:
        (res,) = results.values()
        score_obj = metric._metric._aggregate_and_compute(res.stats.tolist())
        out = json.loads(score_obj.format(signature=res.signature, is_json=True))
        out["score"] = res.score
    else:
        out = {name: res.score for name, res in results.items()}
        out["signature"] = metric.signature()
    out["n"] = len(predictions)
    if ci:
        out["ci95"] = {
            name: list(bootstrap_ci(res.stats, lambda s, m=metric, o=name: m.reduce(o, s), n_resamples, seed=seed))
            for name, res in results.items()
        }
    return out


def format_text(result: dict[str, Any]) -> str:
    """One human-readable line per score."""
    if "name" in result:
        line = f"{result['name']}|{result['signature']} = {result['score']:.2f}"
        if result.get("verbose_score"):
            line += f" {result['verbose_score']}"
        lines = [line]
    else:
        lines = [f"{k} = {v:.4f}" for k, v in result.items() if isinstance(v, float)]
        lines.append(f"signature: {result['signature']}")
    for name, (low, high) in result.get("ci95", {}).items():
        lines.append(f"{name} 95% CI [{low:.4f}, {high:.4f}]")
    return "\n".join(lines)
