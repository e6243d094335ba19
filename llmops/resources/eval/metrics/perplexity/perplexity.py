"""evaluate module `perplexity` (offline): corpus perplexity from per-text log-likelihoods.

    metric = evaluate.load("eval/metrics/perplexity")
    metric.compute(predictions=[-120.5, ...], references=[40, ...])   # log-likelihood, tokens
    → {"perplexity": exp(sum NLL / sum tokens)}
"""

from llmops.eval import evaluate_modules


class Perplexity(evaluate_modules.PerplexityModule):
    pass
