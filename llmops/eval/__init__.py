"""Evaluation harness: metrics with reference parity, suites, backends, paired statistics.

Entry points: `llmops.eval.api.evaluate` / `paired_compare`, `llmops.eval.bench.run_bench`,
`llmops.eval.metrics.build_metric`, `llmops.eval.stats`. See docs/evaluation.md.
"""
