"""Preference learning: reward models, DPO-family losses and RLOO on the shared training engine.

- `losses`: DPO (sigmoid, ipo, cdpo, simpo), Bradley-Terry and RLOO maths, fp32;
- `logps`: summed completion log-probabilities from one forward pass;
- `data`: preference records → tokenised pairs → one concatenated [chosen; rejected] batch;
- `reward_model`: sequence-classification reward models scored at the last real token;
- `tasks`: the `reward`, `dpo` and `rloo` tasks plugged into `llmops.train`.
"""
