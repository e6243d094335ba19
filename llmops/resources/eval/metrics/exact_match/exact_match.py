"""evaluate module `exact_match` (offline): Exact match with normalisation options (normalize: none/strip/squad, lowercase, punctuation, articles, whitespace).

    import evaluate
    metric = evaluate.load("eval/metrics/exact_match")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class ExactMatch(evaluate_modules.TextMetricModule):
    metric_name = "exact_match"
    description = "Exact match with normalisation options (normalize: none/strip/squad, lowercase, punctuation, articles, whitespace)."
