"""evaluate module `chrf_plus_plus` (offline): Corpus chrF++ through sacrebleu.

    import evaluate
    metric = evaluate.load("eval/metrics/chrf_plus_plus")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class ChrfPlusPlus(evaluate_modules.TextMetricModule):
    metric_name = "chrf++"
    description = "Corpus chrF++ through sacrebleu."
