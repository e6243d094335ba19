"""Sizes of the quickstart: the default profile and the `--fast` one (tests, smoke runs).

Everything else (model, LoRA, learning rates, sequence lengths) comes from the shipped
recipes; these are only the overrides that decide how long the run takes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class QuickstartSettings:
    name: str = "docs"  # registered model name
    base: str = "builtin:tiny"
    sft_steps: int = 60
    reward_steps: int = 30
    dpo_steps: int = 60  # 60 x 8 x grad_accum 2 = 960 pairs (~0.5 epoch of ~1800); longer runs drift into repetition
    dpo_lr: float = 5e-4
    # DPO keeps the step whose greedy answers on the docstring *validation* split score best
    # (train.select_best on train.generation_eval): preference accuracy does not track the
    # task there (docs/preference.md); step 0 (= v1) can win, and then v2 is not better.
    dpo_select: str | None = "eval_gen_rougeL"
    dpo_eval_every: int = 10
    # the pairs DPO trains on: None = the export stage's (`export_strategy`); else v2 exports its own with this
    # strategy, e.g. corrections | all_pairs_and_corrections (the raters' corrections as chosen answers)
    dpo_strategy: str | None = None
    dpo_rpo_alpha: float = 0.0  # dpo.rpo_alpha: + alpha * NLL of the chosen answers (0 = plain DPO)
    # improve: dpo_corrections — DPO (with the NLL term) on the rated pairs plus the raters' corrections as
    # chosen answers, validation prompts held out (measured in docs/preference.md; not the default yet)
    corrections_strategy: str = "all_pairs_and_corrections"
    corrections_rpo_alpha: float = 1.0
    select_prompts: int = 64  # validation prompts generated on at each DPO validation
    grad_accum: int = 2  # as recipes/sft_lora.yaml: 16 examples per step (1 gave no significant SFT gain)
    train_limit: int = 2000  # records per training run (the preference export is smaller anyway)
    pref_batch_size: int = 8  # reward model and DPO micro-batch
    eval_limit: int = 49  # docstring test split (49 records)
    eval_max_new_tokens: int = 32
    traffic_requests: int = 514  # chat requests by simulated users: each validation then train prompt once
    traffic_splits: tuple[str, ...] = ("validation", "train")  # never `test`: that is the evaluation suite
    choices: int = 4  # sampled responses per request (one feedback item holds them; raters rate each)
    export_strategy: str = "all_pairs"  # every rated pair with a margin (see llmops.feedback.export)
    improve: str = "dpo"  # how v2 learns from the feedback: dpo | rft (best-rated responses); measured in docs/preference.md
    # (sft_control: NO feedback — v1 continued with SFT on the train split, dpo_steps at dpo_lr with the same
    # validation selection: the control a feedback method must beat to show that the feedback helped)
    rft_steps: int = 40  # SFT steps on the best-rated responses (continuing v1's adapter)
    rft_min_rating: float = 3.0  # keep an item's best response only if its mean rating reaches this
    # improve: iterative_dpo | iterative_rft — K on-policy rounds (llmops.loop.iterative), each sampling
    # the current policy on the train prompts, judging, training, and selecting on validation generations
    iter_rounds: int = 3
    iter_samples: int = 8  # answers per prompt per round
    iter_temperature: float = 1.0
    iter_prompts: int = 256  # train prompts per round (the next round continues through the split)
    iter_judge: str = "raters"  # raters (SIMULATED policy vs the reference) | reward (the reward model)
    iter_min_margin: float = 0.5  # least mean-rating difference of a DPO pair
    iter_pairs: str = "all"  # all | best_vs_worst (one pair per prompt)
    iter_steps: int = 30
    iter_lr: float = 5e-4
    iter_eval_every: int = 10
    temperature: float = 0.9  # sampling of the simulated traffic (DPO from T=0.6 samples was worse; docs/preference.md)
    max_tokens: int = 32
    n_raters: int = 3
    ab_prompts: int = 51  # prompts sent to both versions for the quality check
    min_delta: float = 0.0  # the candidate must beat production by more than this on `metric`
    metric: str = "rougeL"
    seed: int = 42

    def as_dict(self) -> dict[str, Any]:
        """JSON-shaped (tuples as lists), so a re-run's fingerprint equals the one read back from state.json."""
        return json.loads(json.dumps(asdict(self)))


DEFAULT = QuickstartSettings()
FAST = replace(DEFAULT, grad_accum=1, sft_steps=3, train_limit=64, reward_steps=2, dpo_steps=2, dpo_eval_every=1,
               select_prompts=6, eval_limit=12, eval_max_new_tokens=16,
               traffic_requests=16, max_tokens=16, pref_batch_size=2, n_raters=2, ab_prompts=6, rft_steps=2,
               rft_min_rating=1.0, iter_rounds=2, iter_samples=2, iter_prompts=4, iter_steps=2,
               iter_eval_every=1, iter_judge="reward", iter_min_margin=1e-4)


def profile(fast: bool) -> QuickstartSettings:
    return FAST if fast else DEFAULT


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to typed settings overrides (the field's type decides the parse)."""
    from dataclasses import fields

    from llmops.errors import UserError

    types = {f.name: f.type for f in fields(QuickstartSettings)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise UserError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(types))}")
        kind = str(types[key])
        try:
            if kind.startswith("tuple"):
                out[key] = tuple(v for v in value.split(",") if v)
            elif kind.startswith("str | None"):
                out[key] = None if value in ("", "none", "None") else value
            elif kind in ("int", "float"):
                out[key] = int(value) if kind == "int" else float(value)
            else:
                out[key] = value
        except ValueError:
            raise UserError(f"--set {item!r}: {key} takes a {kind}") from None
    return out
