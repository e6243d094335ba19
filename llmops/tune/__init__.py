"""Cost-aware hyper-parameter tuning of recipes with Optuna, the study kept in the project database.

    llmops tune recipes/sft_lora.yaml --space recipes/tune/sft_lora_cost.yaml
    llmops tune --join sft_lora_cost            # another worker, same database
    llmops tune best sft_lora_cost --objective eval_loss --out best.yaml

Layer 6 (a peer of `serve` and `compress`): every trial is an ordinary `llmops.train`
run; eval-suite objectives go through `llmops.eval`; trials can be registered.
"""
