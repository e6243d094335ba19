"""evaluate module `rouge` (offline): ROUGE-1/2/L/Lsum mean F through rouge-score (options: use_stemmer, split_sentences, rouge_types).

    import evaluate
    metric = evaluate.load("eval/metrics/rouge")
    metric.compute(predictions=[...], references=[[...], ...])
"""

from llmops.eval import evaluate_modules


class Rouge(evaluate_modules.TextMetricModule):
    metric_name = "rouge"
    description = "ROUGE-1/2/L/Lsum mean F through rouge-score (options: use_stemmer, split_sentences, rouge_types)."
