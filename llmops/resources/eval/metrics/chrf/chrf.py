"""evaluate module `chrf` (offline): Corpus chrF through sacrebleu (word_order=2 gives chrF++).

    import evaluate
    metric = evaluate.load("eval/metrics/chrf")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class Chrf(evaluate_modules.TextMetricModule):
    metric_name = "chrf"
    description = "Corpus chrF through sacrebleu (word_order=2 gives chrF++)."
