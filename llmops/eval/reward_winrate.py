"""Reward-model win rate of a candidate policy against a baseline, on the same prompts.

A preference update can raise the reward while breaking the task; reporting the
reward-model win rate next to BLEU/ROUGE of the *same* held-out prompts shows both. Each
prompt is one paired sample: the candidate wins (1), ties (½) or loses (0) under the
reward model. The win rate gets a percentile-bootstrap 95% interval and a two-sided
sign test against 0.5 on the non-tied prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

PROMPT_KEYS = ("prompt", "input", "source")
OUTPUT_KEYS = ("output", "response", "completion", "generation")
ID_KEYS = ("index", "id")
Scorer = Callable[[Sequence[Any], Sequence[str]], Sequence[float]]


def winrate_from_scores(
    baseline_scores: Sequence[float], candidate_scores: Sequence[float], n_resamples: int = 1000, seed: int = 0,
    tie_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Win rate (ties = ½), its bootstrap CI and a sign-test p-value from paired rewards."""
    import numpy as np
    from scipy.stats import binomtest

    from llmops.eval.stats import bootstrap_ci

    a, b = np.asarray(baseline_scores, dtype=np.float64), np.asarray(candidate_scores, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equally long, non-empty score lists, got {a.shape} and {b.shape}")
    diff = b - a
    wins, losses = int((diff > tie_tolerance).sum()), int((diff < -tie_tolerance).sum())
    ties = len(diff) - wins - losses
    outcome = np.where(diff > tie_tolerance, 1.0, np.where(diff < -tie_tolerance, 0.0, 0.5))[:, None]
    n = len(outcome)
    score = float(outcome.mean())
    low, high = bootstrap_ci(outcome, lambda s: float(s[0]) / n, n_resamples=n_resamples, seed=seed)
    p = 1.0 if wins + losses == 0 else float(binomtest(wins, wins + losses, 0.5).pvalue)
    return {
        "score": score,
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": p,
        "test": "sign_test",
        "n": n,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "mean_reward_baseline": float(a.mean()),
        "mean_reward_candidate": float(b.mean()),
    }


def reward_winrate(
    scorer: Scorer,
    prompts: Sequence[Any],
    baseline_outputs: Sequence[str],
    candidate_outputs: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score both systems' outputs with `scorer` (e.g. `RewardScorer.score`) and compare them."""
    if not (len(prompts) == len(baseline_outputs) == len(candidate_outputs)):
        raise ValueError("prompts, baseline and candidate outputs must be paired (same length)")
    base = [float(x) for x in scorer(prompts, baseline_outputs)]
    cand = [float(x) for x in scorer(prompts, candidate_outputs)]
    result = winrate_from_scores(base, cand, n_resamples, seed)
    result.update(baseline_scores=base, candidate_scores=cand)  # per prompt, for checks against the task metric
    return result


def reward_vs_metric(result: dict[str, Any], baseline_dir: str | Path, candidate_dir: str | Path,
                     metric: str = "rougeL") -> dict[str, Any]:
    """Check the reward model against the task metric on the same held-out responses.

    Spearman rank correlation between reward scores and the per-sample `metric` over both
    systems' responses, and whether the win rate and the paired `metric` delta point the
    same way (a reward model the policy learned to please can prefer the worse model).
    """
    import numpy as np
    from scipy.stats import spearmanr

    values = []
    for run_dir in (baseline_dir, candidate_dir):
        rows = _read_samples(Path(run_dir))
        values.append([float((r.get("scores") or {}).get(metric, np.nan)) for r in rows])
    rewards = np.asarray(result["baseline_scores"] + result["candidate_scores"], dtype=np.float64)
    task = np.asarray(values[0] + values[1], dtype=np.float64)
    if len(task) != len(rewards) or np.isnan(task).any():
        raise ValueError(f"samples.jsonl of {baseline_dir} / {candidate_dir} lack a per-sample `{metric}` score")
    rho, p = spearmanr(rewards, task)
    delta = float(np.mean(values[1]) - np.mean(values[0]))
    reward_says = "candidate" if result["score"] > 0.5 else "baseline" if result["score"] < 0.5 else "tie"
    metric_says = "candidate" if delta > 0 else "baseline" if delta < 0 else "tie"
    return {"metric": metric, "spearman_rho": None if np.isnan(rho) else float(rho),
            "spearman_p": None if np.isnan(p) else float(p), "n_responses": int(len(task)),
            "metric_delta": delta, "reward_prefers": reward_says, "metric_prefers": metric_says,
            "disagree": reward_says != metric_says}


def _read_samples(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "samples.jsonl"
    if not path.is_file():
        from llmops.errors import DataError

        raise DataError(f"{run_dir}: no samples.jsonl (is it an `llmops eval run` output directory?)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _field(row: dict[str, Any], keys: Sequence[str], what: str, where: str) -> Any:
    for key in keys:
        if key in row:
            return row[key]
    from llmops.errors import DataError

    raise DataError(f"{where}: sample has no {what} field ({', '.join(keys)})")


def reward_winrate_dirs(
    reward_model: str, baseline_dir: str | Path, candidate_dir: str | Path, n_resamples: int = 1000, seed: int = 0,
    scorer: Scorer | None = None, max_length: int = 1024,
) -> dict[str, Any]:
    """Win rate of `candidate_dir` over `baseline_dir`, two `llmops eval run` outputs of one suite.

    Samples are paired by their ``index`` (or ``id``, else position) and must share the prompt.
    """
    from llmops.errors import DataError

    base_dir, cand_dir = Path(baseline_dir), Path(candidate_dir)
    base_rows, cand_rows = _read_samples(base_dir), _read_samples(cand_dir)
    key = next((k for k in ID_KEYS if all(k in r for r in base_rows + cand_rows)), None)
    base_by = {(r[key] if key else i): r for i, r in enumerate(base_rows)}
    cand_by = {(r[key] if key else i): r for i, r in enumerate(cand_rows)}
    if set(base_by) != set(cand_by):
        raise DataError(f"{base_dir} and {cand_dir} do not cover the same samples (same suite and limit?)")
    prompts, base_out, cand_out = [], [], []
    for sid in base_by:
        b, c = base_by[sid], cand_by[sid]
        prompt = _field(b, PROMPT_KEYS, "prompt", str(base_dir / "samples.jsonl"))
        if prompt != _field(c, PROMPT_KEYS, "prompt", str(cand_dir / "samples.jsonl")):
            raise DataError(f"sample {sid!r}: the two runs have different prompts; not a paired comparison")
        prompts.append(prompt)
        for row, outs, where in ((b, base_out, base_dir), (c, cand_out, cand_dir)):
            text = _field(row, OUTPUT_KEYS, "output", str(where / "samples.jsonl"))
            if not isinstance(text, str):
                raise DataError(f"{where}: sample {sid!r}: output is not text (win rate needs a generation suite)")
            outs.append(text)
    if scorer is None:
        from llmops.preference.reward_model import RewardScorer

        # Eval prompts are stored already rendered (chat template applied): score the exact
        # text the policy saw followed by its output and end of turn, without re-templating.
        scorer = RewardScorer(reward_model, max_length=max_length, chat_template=False).score
    result = reward_winrate(scorer, prompts, base_out, cand_out, n_resamples, seed)
    result.update(reward_model=reward_model, baseline=str(base_dir), candidate=str(cand_dir))
    return result


def with_task_metrics(result: dict[str, Any], baseline_dir: str | Path, candidate_dir: str | Path) -> dict[str, Any]:
    """Add the suite's own paired comparison (BLEU, ROUGE, ...) next to the win rate, when available."""
    try:
        from llmops.eval.api import paired_compare
    except ImportError:
        return result
    if (Path(baseline_dir) / "results.json").is_file() and (Path(candidate_dir) / "results.json").is_file():
        result["task_metrics"] = paired_compare(baseline_dir, candidate_dir)
    return result


def add_cli(subparsers) -> None:
    """`llmops eval winrate`: registered by `llmops.cli.eval` (parsing only; work happens above)."""
    w = subparsers.add_parser(
        "winrate",
        help="reward-model win rate of a candidate run over a baseline run (paired, same suite)",
        description="Score the outputs of two `llmops eval run` directories of the same suite with a reward "
        "model; report the candidate's win rate (ties = 1/2) with a bootstrap 95%% CI and a sign test, next to "
        "the suite's own paired metrics (BLEU, ROUGE, ...) so a preference update that breaks the task shows up.",
    )
    w.add_argument("--reward-model", required=True, help="reward model reference (e.g. runs/reward/final)")
    w.add_argument("--baseline", required=True, help="eval output dir of the old policy")
    w.add_argument("--candidate", required=True, help="eval output dir of the new policy")
    w.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    w.add_argument("--out", help="also write the result as JSON here")
    w.add_argument("--json", action="store_true", help="print JSON")
    w.set_defaults(func=_run_cli)


def _run_cli(args) -> int:
    result = with_task_metrics(
        reward_winrate_dirs(args.reward_model, args.baseline, args.candidate, seed=args.seed),
        args.baseline, args.candidate,
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"reward win rate {result['score']:.3f} [{result['ci_low']:.3f}, {result['ci_high']:.3f}] "
          f"(wins {result['wins']}, ties {result['ties']}, losses {result['losses']}; "
          f"sign test p={result['p_value']:.3g}; n={result['n']})")
    print(f"mean reward: baseline {result['mean_reward_baseline']:.4f}, candidate {result['mean_reward_candidate']:.4f}")
    for metric, row in (result.get("task_metrics") or {}).items():
        print(f"{metric}: baseline {row['baseline']:.4f} candidate {row['candidate']:.4f} "
              f"delta {row['delta']:+.4f} (p={row['p_value']:.3g}, {row['test']})")
    return 0
