"""How far to trust a judge: its agreement with the human feedback in the store.

Ratings: Spearman's rank correlation between the judge's rubric rating and the raters'
mean score of the same responses. Comparisons: how often the judge (both orders, see
`llmops.eval.judge`) prefers the response the raters ranked higher; ties and parse
failures are reported, not hidden.
"""

from __future__ import annotations

from typing import Any

from llmops.eval.judge import Judge, JudgeConfig


def judge_agreement(config: JudgeConfig, db_url: str, limit: int = 200, judge: Judge | None = None) -> dict[str, Any]:
    from scipy.stats import spearmanr

    from llmops.feedback.queries import compared_pairs, rated_responses

    judge = judge or Judge(config)
    out: dict[str, Any] = {"judge": config.provenance(), "db": _redact(db_url)}
    rated = rated_responses(db_url, limit)
    if rated:
        verdicts = judge.rate([r["prompt"] for r in rated], [r["response"] for r in rated], [None] * len(rated))
        pairs = [(v, r["mean_score"]) for (v, _), r in zip(verdicts, rated) if v is not None]
        rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic if len(pairs) >= 3 else None
        out["ratings"] = {"n": len(rated), "parse_failures": len(rated) - len(pairs),
                          "spearman": None if rho is None or rho != rho else float(rho)}
    compared = compared_pairs(db_url, limit)
    if compared:
        scores = [s for s, _, _ in judge.compare([p["prompt"] for p in compared], [p["better"] for p in compared],
                                                 [p["worse"] for p in compared], [None] * len(compared))]
        decided = [s for s in scores if s is not None]
        out["comparisons"] = {
            "n": len(compared), "parse_failures": len(compared) - len(decided),
            "agreement": sum(decided) / len(decided) if decided else None,  # a judge tie counts half
            "ties": sum(1 for s in decided if s == 0.5),
        }
    if not rated and not compared:
        out["note"] = "no ratings or comparisons in the feedback store yet"
    return out


def _redact(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<database>"
