"""evaluate module `llm_judge` (offline with a local judge): LLM-as-judge rating or pairwise win rate.

    import evaluate
    metric = evaluate.load("eval/metrics/llm_judge")
    metric.compute(predictions=[...], references=[...], questions=[...], model="registry:judge@production")
"""

from llmops.eval import evaluate_modules


class LLMJudge(evaluate_modules.JudgeModule):
    pass
