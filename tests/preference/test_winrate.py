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
