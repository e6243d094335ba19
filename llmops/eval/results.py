"""Scores of an evaluation from its raw outputs: metric results, intervals and samples.jsonl rows.

Everything here works from the raw outputs (fresh or cached), so metrics and answer
filters can change without re-running the model. The task type says which inputs each
metric gets and what a sample's row holds; per-sample sufficient statistics go into every
row so that two result directories can be compared with a paired test later
(`llmops.eval.api.paired_compare`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmops.eval.metrics.base import Metric, MetricResult
from llmops.eval.stats import bootstrap_ci
from llmops.eval.suites import Suite
from llmops.eval.task_types import task_type
from llmops.eval.tasks import Sample


def score_samples(suite: Suite, samples: list[Sample], raw: list[dict[str, Any]]) -> tuple[list[Metric], dict[str, MetricResult]]:
    """(metric objects, {output name: MetricResult}) for the raw outputs."""
    kind = task_type(suite)
    metrics = suite.build_metrics()
    results: dict[str, MetricResult] = {}
    for metric in metrics:
        res = metric.compute(*kind.metric_arguments(metric, samples, raw))
        for name, value in res.items():
            if name in results:
                raise ValueError(f"two metrics of the suite produce `{name}`")
            value.extra["spec"] = metric.spec()
            results[name] = value
    return metrics, results


def filtered_answers(suite: Suite, raw: list[dict[str, Any]]) -> list[list[str]]:
    """Every sample's outputs after the suite's filters (generation suites; one list per prompt)."""
    from llmops.eval.task_types import GenerateTask

    return GenerateTask(suite).answers(raw)


def metric_table(suite: Suite, metrics: list[Metric], results: dict[str, MetricResult], n: int) -> dict[str, dict]:
    """results.json's metrics: score, bootstrap interval and what a comparison needs, per output."""
    table = {}
    for name, res in results.items():
        owner = next(m for m in metrics if name in m.outputs())
        low, high = bootstrap_ci(res.stats, lambda s, m=owner, o=name: m.reduce(o, s),
                                 suite.bootstrap.n_resamples, suite.bootstrap.confidence, seed=suite.seed)
        table[name] = {
            "score": res.score, "ci_low": low, "ci_high": high, "confidence": suite.bootstrap.confidence,
            "n": n, "higher_is_better": res.higher_is_better, "binary": res.binary,
            "tokenizer_dependent": owner.tokenizer_dependent(name), "signature": res.signature, "spec": res.extra["spec"],
        }
    return table


def sample_rows(suite: Suite, samples: list[Sample], raw: list[dict], metrics: list[Metric],
                results: dict[str, MetricResult]) -> list[dict]:
    """samples.jsonl: per sample its index, the task type's fields, scores and sufficient statistics."""
    kind = task_type(suite)
    owners = {out: m for m in metrics for out in m.outputs()}
    rows = []
    for i, (s, r) in enumerate(zip(samples, raw)):
        row: dict[str, Any] = {"index": s.index, "add_special_tokens": s.add_special_tokens}
        row.update(kind.sample_fields(s, r, i, metrics))
        row["scores"] = {name: owners[name].reduce(name, res.stats[i]) for name, res in results.items()}
        row["stats"] = {name: res.stats[i].tolist() for name, res in results.items()}
        rows.append(row)
    return rows


def write_outputs(out_dir: str | Path, rows: list[dict], results_doc: dict[str, Any]) -> None:
    """samples.jsonl, then results.json (its presence marks a finished directory)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "results.json").write_text(json.dumps(results_doc, indent=1, ensure_ascii=False))
