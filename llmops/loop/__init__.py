"""The closed loop: orchestration of training, evaluation, registry, serving, feedback and monitoring.

- `llmops.loop.quickstart.run_quickstart(out_dir, fast=False, db_url=None)` — ``llmops quickstart``;
- `llmops.loop.retrain.RetrainLoop(config).tick()` — ``llmops loop --config ...``: alert rules
  fire, fresh feedback is exported, the retraining recipe runs, and the result is promoted
  only through the gates, once per incident.

This package holds no training or evaluation logic of its own (see `llmops.loop.steps`).
"""
