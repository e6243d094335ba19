"""Reward-model win rate of a candidate vs a baseline on paired eval outputs."""

from __future__ import annotations

import json

import pytest

from llmops.errors import DataError
from llmops.eval.reward_winrate import reward_winrate_dirs, winrate_from_scores


def test_winrate_counts_ties_half_and_tests_against_half():
    result = winrate_from_scores([0.0, 0.0, 1.0, 2.0], [1.0, 0.0, 0.5, 3.0])
    assert (result["wins"], result["ties"], result["losses"]) == (2, 1, 1)
    assert result["score"] == pytest.approx((2 + 0.5) / 4)
    assert result["ci_low"] <= result["score"] <= result["ci_high"]
    strong = winrate_from_scores([0.0] * 30, [1.0] * 30)
    assert strong["score"] == 1.0 and strong["p_value"] < 1e-6
    with pytest.raises(ValueError):
        winrate_from_scores([1.0], [1.0, 2.0])


def _eval_dir(path, outputs):
    path.mkdir()
    rows = [{"index": i, "prompt": f"prompt {i}", "output": o} for i, o in enumerate(outputs)]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_winrate_from_two_eval_dirs_is_paired_by_id(tmp_path):
    base = _eval_dir(tmp_path / "base", ["short", "a much longer answer", "mid size"])
    cand = _eval_dir(tmp_path / "cand", ["a longer answer now", "tiny", "mid size"])
    seen = []

    def scorer(prompts, outputs):  # longer is better, and prompts must line up
        seen.append(list(prompts))
        return [float(len(o)) for o in outputs]

    result = reward_winrate_dirs("unused", base, cand, scorer=scorer)
    assert (result["wins"], result["ties"], result["losses"]) == (1, 1, 1)
    assert seen[0] == seen[1] == ["prompt 0", "prompt 1", "prompt 2"]
    other = _eval_dir(tmp_path / "other", ["x", "y"])
    with pytest.raises(DataError, match="same samples"):
        reward_winrate_dirs("unused", base, other, scorer=scorer)


def _scored_dir(path, outputs, rouge):
    path.mkdir()
    rows = [{"index": i, "prompt": f"prompt {i}", "output": o, "scores": {"rougeL": r}}
            for i, (o, r) in enumerate(zip(outputs, rouge))]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reward_is_checked_against_the_task_metric(tmp_path):
    from llmops.eval.reward_winrate import reward_vs_metric

    outs = ["a", "bb", "ccc", "dddd"]
    base = _scored_dir(tmp_path / "b", outs, [0.1, 0.2, 0.3, 0.4])
    better = _scored_dir(tmp_path / "c", [o + "xxxx" for o in outs], [0.5, 0.6, 0.7, 0.8])
    length = lambda prompts, outputs: [float(len(o)) for o in outputs]  # noqa: E731 - tracks ROUGE-L here
    agree = reward_vs_metric(reward_winrate_dirs("-", base, better, scorer=length), base, better)
    assert agree["spearman_rho"] == pytest.approx(1.0) and agree["n_responses"] == 8
    assert not agree["disagree"] and agree["metric_prefers"] == "candidate"
    worse = _scored_dir(tmp_path / "w", [o * 2 for o in outs], [0.0, 0.0, 0.1, 0.1])
    flipped = reward_vs_metric(reward_winrate_dirs("-", base, worse, scorer=length), base, worse)
    assert flipped["disagree"] and flipped["reward_prefers"] == "candidate" and flipped["metric_prefers"] == "baseline"
    with pytest.raises(ValueError, match="rouge1"):
        reward_vs_metric(reward_winrate_dirs("-", base, worse, scorer=length), base, worse, metric="rouge1")
