"""Iterative (on-policy) preference rounds: the data builders, the raters' judge, and a `--fast` round trip."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from llmops.errors import ConfigError, UserError
from llmops.loop import iterative


def test_pairs_keep_every_ordered_pair_with_a_margin_and_drop_ties():
    recs = [{"prompt": "p", "completion": "ref"}]
    answers = [["a", "b", "c", "a"]]
    scores = [[3.0, 1.0, 3.0, 3.0]]
    pairs = iterative.preference_pairs(recs, answers, scores, min_margin=0.5)
    got = sorted((p["chosen"], p["rejected"]) for p in pairs)
    assert got == [("a", "b"), ("c", "b")]  # a≈c is a tie; the duplicate "a" adds nothing
    assert all(p["margin"] == 2.0 and p["prompt"] == "p" for p in pairs)
    assert iterative.preference_pairs(recs, answers, scores, min_margin=2.5) == []
    widest = iterative.preference_pairs([recs[0]] * 2, [["a", "b", "c"], ["x", "x", "x"]], [[2.0, 1.0, 4.0], [1, 2, 3]],
                                        min_margin=0.5, best_vs_worst=True)
    assert [(p["chosen"], p["rejected"], p["margin"]) for p in widest] == [("c", "b", 3.0)]  # identical texts: none


def test_best_answers_take_each_prompts_best_above_the_floor():
    recs = [{"prompt": "p1"}, {"prompt": "p2"}]
    best = iterative.best_answers(recs, [["x", "y"], ["u", "v"]], [[1.0, 4.0], [2.0, 1.0]], min_score=3.0)
    assert best == [{"prompt": "p1", "completion": "y", "score": 4.0}]


def test_raters_judge_is_the_simulated_raters_policy():
    from llmops.loop.raters import RATER_SHIFTS, rating_for, rouge_l

    rec = {"prompt": "doc", "completion": "Return the number of items in a container."}
    answers = [["Return the number of items in a container.", "Open a file.", "Return the items."]]
    scores = iterative.raters_judge(3)([rec], answers)[0]
    want = [sum(rating_for(rouge_l(a, rec["completion"]), s) for s in RATER_SHIFTS) / 3 for a in answers[0]]
    assert scores == want and scores[0] == 5.0 and scores[1] < scores[2]


def test_spec_refuses_what_cannot_work():
    for bad in ({"samples": 1}, {"method": "ppo"}, {"judge": "oracle"}, {"temperature": 0.0}, {"rounds": 0},
                {"pairs": "some"}):
        with pytest.raises(ConfigError):
            replace(iterative.IterativeSpec(), **bad).check()


def test_parse_overrides_types_and_refuses_unknown_keys():
    from llmops.loop.settings import parse_overrides

    got = parse_overrides(["iter_rounds=2", "iter_lr=1e-3", "iter_judge=reward", "dpo_select=none",
                           "traffic_splits=train"])
    assert got == {"iter_rounds": 2, "iter_lr": 1e-3, "iter_judge": "reward", "dpo_select": None,
                   "traffic_splits": ("train",)}
    with pytest.raises(UserError):
        parse_overrides(["no_such=1"])
    with pytest.raises(UserError):
        parse_overrides(["iter_rounds=two"])


@pytest.mark.slow
def test_fast_round_trip_trains_each_round_on_its_own_policys_samples(quickstart_fast, tmp_path, monkeypatch):
    """Fork the fast quickstart, redo v2 with 2 iterative DPO rounds: round k samples from round k-1's
    selected checkpoint, its pairs are made of those samples, and the last round registers v2."""
    from llmops.loop.fork import fork
    from llmops.loop.quickstart import run_quickstart
    from llmops.loop.settings import FAST

    settings = replace(FAST, improve="iterative_dpo")
    with pytest.raises(UserError):  # a setting of an earlier stage cannot be forked
        fork(Path(quickstart_fast["out_dir"]), tmp_path / "bad", replace(settings, sft_steps=4))
    out = tmp_path / "fork"
    fork(Path(quickstart_fast["out_dir"]), out, settings)
    from llmops.registry import api

    fork_db = f"sqlite:///{out.resolve() / 'llmops.db'}"
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(out.resolve() / "registry"))
    assert api.get_store(fork_db).alias_version("docs", "production") == 1  # the copy starts again from v1
    facts = run_quickstart(out, fast=True, improve="iterative_dpo")
    rounds = facts["v2_train"]["iterative"]["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[0]["policy"] == "registry:docs/1" and rounds[1]["policy"] == rounds[0]["registered"]
    spec = facts["v2_train"]["iterative"]["spec"]
    for r in rounds:
        rdir = out / "runs" / "iterative" / f"round_{r['round']}"
        samples = [json.loads(x) for x in (rdir / "samples.jsonl").read_text().splitlines()]
        assert {s["policy"] for s in samples} == {r["policy"]}
        assert all(len(s["answers"]) == spec["samples"] for s in samples)
        answers = {(s["prompt"], a) for s in samples for a in s["answers"]}
        pairs = [json.loads(x) for x in (rdir / "data.jsonl").read_text().splitlines()]
        assert pairs and all((p["prompt"], p["chosen"]) in answers and (p["prompt"], p["rejected"]) in answers
                             for p in pairs)
    # on-policy: re-sampling round 1's prompts from round 0's selected checkpoint gives round 1's samples
    monkeypatch.setenv("LLMOPS_DATABASE_URL", f"sqlite:///{out.resolve() / 'llmops.db'}")  # the fork's registry
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(out.resolve() / "registry"))
    rdir = out / "runs" / "iterative" / "round_1"
    samples = [json.loads(x) for x in (rdir / "samples.jsonl").read_text().splitlines()]
    again = iterative.sample_answers(rounds[1]["policy"], [s["prompt"] for s in samples], spec["samples"],
                                     spec["temperature"], spec["max_new_tokens"], seed=spec["seed"] * 1000 + 1)
    assert again == [s["answers"] for s in samples]
    # no evaluation (test) or selection (validation) prompt is sampled in the rounds
    from llmops.data import load_records

    held_out = {r["prompt"] for sp in ("test", "validation") for r in load_records("builtin:docstrings", split=sp)}
    assert not held_out & {s["prompt"] for r in rounds
                           for s in map(json.loads, (out / "runs" / "iterative" / f"round_{r['round']}" /
                                                     "samples.jsonl").read_text().splitlines())}
    # the source's own v2 stays registered in the copy, so the fork's v2 is the next version
    v2 = facts["promote_v2"]["version"]
    assert v2 == quickstart_fast["promote_v2"]["version"] + 1
    assert facts["eval_v2"]["vs_v1"]["rougeL"]["p_value"] is not None
    # lineage: docs/v2 <- docs-rounds/1 <- docs/1

    db = os.environ["LLMOPS_DATABASE_URL"]
    assert api.get_version("docs", version=v2, db_url=db).lineage["parent_version"] == "docs-rounds/1"
    assert api.get_version("docs-rounds", version=1, db_url=db).lineage["parent_version"] == "docs/1"


def test_resume_skips_finished_rounds_and_reuses_written_samples(tmp_path, monkeypatch):
    """A job killed in round 1's training: the retry does not redo round 0, does not sample round 1
    again, and trains round 1 once more (the real train_round resumes from its checkpoint)."""
    sampled, trained = [], []

    def fake_sample(policy, prompts, n, temperature, max_new_tokens, seed):
        sampled.append((policy, seed))
        return [[f"{p} {policy} {i}" for i in range(n)] for p in prompts]

    monkeypatch.setattr(iterative, "sample_answers", fake_sample)
    judge = lambda records, answers: [[float(i) for i in range(len(a))] for a in answers]  # noqa: E731
    crash = {"round": 1}

    def train_round(k, policy, data, last):
        trained.append((k, policy))
        if crash.get("round") == k:
            raise RuntimeError("killed")
        return {"final": str(tmp_path / f"final_{k}"), "registered": f"registry:m-rounds/{k + 1}"}

    spec = iterative.IterativeSpec(rounds=2, samples=3, prompts_per_round=2, min_margin=0.5)
    pool = [{"prompt": f"p{i}"} for i in range(5)]
    with pytest.raises(RuntimeError):
        iterative.run_rounds(spec, "registry:m/1", pool, judge, train_round, tmp_path, progress=lambda _: None,
                             resume=True)
    assert sampled == [("registry:m/1", 0), ("registry:m-rounds/1", 1)] and len(trained) == 2
    crash.clear()
    said = []
    out = iterative.run_rounds(spec, "registry:m/1", pool, judge, train_round, tmp_path, progress=said.append,
                               resume=True)
    assert sampled == [("registry:m/1", 0), ("registry:m-rounds/1", 1)]  # nothing sampled again
    assert trained[2:] == [(1, "registry:m-rounds/1")]  # round 0 not retrained
    assert "not redone" in said[0] and "reusing" in said[1]
    assert [r["policy"] for r in out["iterative"]["rounds"]] == ["registry:m/1", "registry:m-rounds/1"]
    assert out["registered"] == "registry:m-rounds/2"
    # without resume (the quickstart), every round is redone
    iterative.run_rounds(spec, "registry:m/1", pool, judge, train_round, tmp_path, progress=lambda _: None)
    assert len(sampled) == 4 and len(trained) == 5
