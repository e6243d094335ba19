"""Metric registry: `build_metric(name, **options)` for every metric llmops can score.

Names: bleu, chrf, chrf++, ter (sacrebleu); rouge (rouge1/rouge2/rougeL/rougeLsum);
exact_match, token_f1; pass_at_k (several samples per prompt); llm_judge (a judge model); accuracy (multiple choice: accuracy, accuracy_norm); perplexity.
"""

from __future__ import annotations

import difflib
from typing import Any

from llmops.errors import ConfigError
from llmops.eval.metrics.base import Metric, MetricResult, TextMetric
from llmops.eval.metrics.judge_metric import LLMJudge
from llmops.eval.metrics.likelihood import MultipleChoice, Perplexity
from llmops.eval.metrics.rouge import Rouge
from llmops.eval.metrics.sacrebleu_metrics import BLEU, CHRF, CHRFPP, TER
from llmops.eval.metrics.sampling import PassAtK
from llmops.eval.metrics.text_match import ExactMatch, TokenF1

METRICS: dict[str, type[Metric]] = {
    cls.name: cls for cls in (BLEU, CHRF, CHRFPP, TER, Rouge, ExactMatch, TokenF1, MultipleChoice, Perplexity, PassAtK, LLMJudge)
}


def build_metric(name: str, **options: Any) -> Metric:
    """Instantiate a metric by name; unknown names get a did-you-mean suggestion."""
    cls = METRICS.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(METRICS), n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (known: {', '.join(METRICS)})"
        raise ConfigError(f"unknown metric `{name}`{hint}")
    return cls(**options)


def metric_from_spec(spec: dict[str, Any]) -> Metric:
    """Rebuild a metric from `Metric.spec()` (as stored in results.json)."""
    spec = dict(spec)
    return build_metric(spec.pop("name"), **spec)


__all__ = ["METRICS", "Metric", "MetricResult", "TextMetric", "build_metric", "metric_from_spec"]
