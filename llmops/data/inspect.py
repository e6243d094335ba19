"""`llmops data inspect`: what a dataset looks like to a given tokenizer before you train on it."""

from __future__ import annotations

import json
from typing import Any

from llmops.data.formats import dataset_fingerprint, detect_format, preference_messages
from llmops.data.sft import IGNORE, chat_labels, sft_ids


def _percentiles(values: list[int]) -> dict[str, float]:
    import numpy as np

    arr = np.asarray(values)
    return {
        "min": int(arr.min()),
        "mean": round(float(arr.mean()), 1),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "max": int(arr.max()),
    }


def _lengths(record: dict, fmt: str, tokenizer, chat_template: bool) -> tuple[int, int]:
    """(total tokens, index of the first supervised token) of one record, untruncated."""
    if fmt == "preference":  # the worse of the two conversations decides
        prompt, chosen, rejected = preference_messages(record)
        pairs = [chat_labels(prompt + side, tokenizer) for side in (chosen, rejected)]
    else:
        pairs = [sft_ids(record, tokenizer, chat_template)]
    total = max(len(ids) for ids, _ in pairs)
    first = max(next((i for i, lab in enumerate(labels) if lab != IGNORE), len(labels)) for _, labels in pairs)
    return total, first


def inspect_records(
    records: list[dict[str, Any]], tokenizer, max_length: int, chat_template: bool = True
) -> dict[str, Any]:
    """Counts, format, token-length percentiles, duplicate and truncation rates at `max_length`.

    ``truncated_rate``: samples longer than max_length. ``dropped_rate``: samples whose
    first supervised token lies beyond max_length (training drops them).
    """
    fmt = detect_format(records)
    canon = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in records]
    lengths, first_supervised = [], []
    for r in records:
        total, first = _lengths(r, fmt, tokenizer, chat_template)
        lengths.append(total)
        first_supervised.append(first)
    n = len(records)
    return {
        "n_records": n,
        "format": fmt,
        "columns": sorted({k for r in records for k in r}),
        "fingerprint": dataset_fingerprint(records),
        "duplicate_rate": round(1 - len(set(canon)) / n, 4),
        "max_length": max_length,
        "tokens": _percentiles(lengths),
        "truncated_rate": round(sum(x > max_length for x in lengths) / n, 4),
        "dropped_rate": round(sum(x >= max_length for x in first_supervised) / n, 4),
    }


def format_report(spec: str, model_ref: str, report: dict[str, Any]) -> str:
    t = report["tokens"]
    return "\n".join(
        [
            f"dataset       {spec}",
            f"records       {report['n_records']}   format: {report['format']}   columns: {', '.join(report['columns'])}",
            f"fingerprint   {report['fingerprint']}",
            f"duplicates    {report['duplicate_rate']:.2%} (identical records)",
            f"tokens ({model_ref})  min {t['min']}  mean {t['mean']}  p50 {t['p50']:g}  p90 {t['p90']:g}  "
            f"p99 {t['p99']:g}  max {t['max']}",
            f"at max_length {report['max_length']}: truncated {report['truncated_rate']:.2%}, "
            f"dropped (no supervised token left) {report['dropped_rate']:.2%}",
        ]
    )
