"""evaluate module `pass_at_k` (offline): pass@k over several samples per prompt (unbiased estimator).

    import evaluate
    metric = evaluate.load("eval/metrics/pass_at_k")
    metric.compute(predictions=[["12", "13", "12"], ...], references=["12", ...], k=[1, 3])
"""

from llmops.eval import evaluate_modules


class PassAtK(evaluate_modules.SamplesMetricModule):
    metric_name = "pass_at_k"
