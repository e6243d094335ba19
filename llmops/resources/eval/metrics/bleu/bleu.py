"""evaluate module `bleu` (offline): Corpus BLEU through sacrebleu (options: tokenize, lowercase, smooth_method, ...).

    import evaluate
    metric = evaluate.load("eval/metrics/bleu")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class Bleu(evaluate_modules.TextMetricModule):
    metric_name = "bleu"
    description = "Corpus BLEU through sacrebleu (options: tokenize, lowercase, smooth_method, ...)."
