"""evaluate module `accuracy` (offline): multiple-choice accuracy from log-likelihoods.

    metric = evaluate.load("eval/metrics/accuracy")
    metric.compute(predictions=[[-1.2, -3.4, -2.0], ...], references=[0, ...], choice_lengths=[[5, 7, 4], ...])
    → {"accuracy": ..., "accuracy_norm": ...}
"""

from llmops.eval import evaluate_modules


class Accuracy(evaluate_modules.MultipleChoiceModule):
    pass
