"""evaluate module `ter` (offline): Corpus TER through sacrebleu (lower is better).

    import evaluate
    metric = evaluate.load("eval/metrics/ter")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class Ter(evaluate_modules.TextMetricModule):
    metric_name = "ter"
    description = "Corpus TER through sacrebleu (lower is better)."
