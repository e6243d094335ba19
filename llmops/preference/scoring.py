"""Score a file of responses or preference pairs with a reward model (`llmops reward score`)."""

from __future__ import annotations

import statistics
from typing import Any

from llmops.errors import DataError


def score_file(
    model_ref: str, spec: str, batch_size: int = 16, max_length: int = 1024, chat_template: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, rows with scores). Preference rows get `chosen_score`/`rejected_score`."""
    from llmops.data import load_records
    from llmops.preference.data import split_record
    from llmops.preference.reward_model import RewardScorer

    records = load_records(spec)
    if not records:
        raise DataError(f"{spec}: no rows to score")
    scorer = RewardScorer(model_ref, max_length=max_length, chat_template=chat_template)
    summary: dict[str, Any] = {"model": model_ref, "input": spec, "rows": len(records)}
    if all("chosen" in r and "rejected" in r for r in records):
        split = [split_record(r, f"{spec}: row {i + 1}") for i, r in enumerate(records)]
        prompts = [p for p, _, _ in split]
        chosen = scorer.score(prompts, [c for _, c, _ in split], batch_size)
        rejected = scorer.score(prompts, [rj for _, _, rj in split], batch_size)
        rows = [{**r, "chosen_score": c, "rejected_score": rj} for r, c, rj in zip(records, chosen, rejected)]
        margins = [c - rj for c, rj in zip(chosen, rejected)]
        summary.update(
            kind="pairs",
            accuracy=sum(m > 0 for m in margins) / len(margins),
            mean_margin=statistics.fmean(margins),
            mean_chosen=statistics.fmean(chosen),
            mean_rejected=statistics.fmean(rejected),
        )
        return summary, rows
    prompts, responses = [], []
    for i, r in enumerate(records):
        response = r.get("response", r.get("completion"))
        if "prompt" not in r or response is None:
            raise DataError(f"{spec}: row {i + 1}: needs `prompt` and `response` (or `completion`)")
        prompts.append(r["prompt"])
        responses.append(response)
    scores = scorer.score(prompts, responses, batch_size)
    summary.update(
        kind="responses",
        mean_score=statistics.fmean(scores),
        std_score=statistics.pstdev(scores),
        min_score=min(scores),
        max_score=max(scores),
    )
    return summary, [{**r, "score": s} for r, s in zip(records, scores)]
