"""`llmops data inspect`: what a dataset looks like to a given tokenizer before you train on it."""

from __future__ import annotations

import json
from typing import Any

from llmops.data.dedup import find_duplicates
from llmops.data.formats import dataset_fingerprint, detect_format, preference_messages, to_messages
from llmops.data.sft import IGNORE, chat_labels, sft_ids
from llmops.data.textstats import charset_summary, record_text, text_problems

EXAMPLES = 5  # examples shown per finding


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


def role_stats(records: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    """Turns per conversation, messages per role, and distinct system prompts."""
    from collections import Counter

    roles: Counter[str] = Counter()
    turns, systems = [], Counter()
    for r in records:
        if fmt == "preference":
            prompt, chosen, _ = preference_messages(r)
            msgs = prompt + chosen
        elif fmt == "text":
            return {"messages_per_role": {}, "turns": None, "distinct_system_prompts": 0}
        else:
            msgs = to_messages(r)
        roles.update(m["role"] for m in msgs)
        turns.append(len(msgs))
        systems.update(m["content"] for m in msgs if m["role"] == "system")
    return {"messages_per_role": dict(roles.most_common()), "turns": _percentiles(turns),
            "distinct_system_prompts": len(systems),
            "top_system_prompts": [{"text": t[:200], "count": c} for t, c in systems.most_common(3)]}


def _problems(records: list[dict[str, Any]]) -> dict[str, Any]:
    from collections import defaultdict

    where: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        for problem in text_problems(r):
            where[problem].append(i)
    return {k: {"count": len(v), "examples": v[:EXAMPLES]} for k, v in sorted(where.items())}


def _duplicates(records: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    rep = find_duplicates(records, threshold=threshold)

    def show(groups: list[list[int]]) -> list[dict[str, Any]]:
        return [{"records": g, "texts": [record_text(records[i])[:300] for i in g[:3]]} for g in groups[:EXAMPLES]]

    return {**rep.summary(), "exact_examples": show(rep.exact_groups), "near_examples": show(rep.near_groups)}


def inspect_records(
    records: list[dict[str, Any]], tokenizer, max_length: int, chat_template: bool = True,
    near_threshold: float = 0.8,
) -> dict[str, Any]:
    """Counts, format, lengths (chars and tokens), roles, duplicates, text problems, scripts, truncation.

    ``truncated_rate``: samples longer than max_length. ``dropped_rate``: samples whose
    first supervised token lies beyond max_length (training drops them). ``duplicate_rate``
    counts identical records; ``duplicates`` adds normalised-text and MinHash near duplicates.
    """
    fmt = detect_format(records)
    canon = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in records]
    lengths, first_supervised = [], []
    for r in records:
        total, first = _lengths(r, fmt, tokenizer, chat_template)
        lengths.append(total)
        first_supervised.append(first)
    n = len(records)
    texts = [record_text(r) for r in records]
    chars = [len(t) for t in texts]
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
        "chars": _percentiles(chars),
        "chat_template": bool(chat_template and getattr(tokenizer, "chat_template", None)),
        "roles": role_stats(records, fmt),
        "duplicates": _duplicates(records, near_threshold),
        "problems": _problems(records),
        "charset": charset_summary(texts),
        "truncated_examples": [i for i, x in enumerate(lengths) if x > max_length][:EXAMPLES],
        "_token_lengths": lengths,
        "_char_lengths": chars,
    }


def format_report(spec: str, model_ref: str, report: dict[str, Any]) -> str:
    t = report["tokens"]
    return "\n".join(
        [
            f"dataset       {spec}",
            f"records       {report['n_records']}   format: {report['format']}   columns: {', '.join(report['columns'])}",
            f"fingerprint   {report['fingerprint']}",
            f"duplicates    {report['duplicate_rate']:.2%} (identical records); normalised "
            f"{report['duplicates']['exact_duplicates']}, near (MinHash) {report['duplicates']['near_duplicates']}",
            f"chars         min {report['chars']['min']}  p50 {report['chars']['p50']:g}  max {report['chars']['max']}",
            f"problems      " + (", ".join(f"{k}: {v['count']}" for k, v in report["problems"].items()) or "none"),
            f"scripts       " + ", ".join(f"{k} {v:.0%}" for k, v in report["charset"]["letters_by_script"].items()),
            f"tokens ({model_ref})  min {t['min']}  mean {t['mean']}  p50 {t['p50']:g}  p90 {t['p90']:g}  "
            f"p99 {t['p99']:g}  max {t['max']}",
            f"at max_length {report['max_length']}: truncated {report['truncated_rate']:.2%}, "
            f"dropped (no supervised token left) {report['dropped_rate']:.2%}",
        ]
    )
