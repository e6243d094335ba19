"""evaluate module `token_f1` (offline): SQuAD-style token F1 (default normalisation: squad).

    import evaluate
    metric = evaluate.load("eval/metrics/token_f1")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class TokenF1(evaluate_modules.TextMetricModule):
    metric_name = "token_f1"
    description = "SQuAD-style token F1 (default normalisation: squad)."
