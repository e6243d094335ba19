"""LLM-as-judge: verdict parsing, position-bias cancelling, the metric in a suite (rubric and
pairwise against a baseline run), agreement with the human feedback in the store, and a
real local judge end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmops.errors import ConfigError
from llmops.eval import runner
from llmops.eval.api import evaluate
from llmops.eval.backends import Backend, Generation
from llmops.eval.judge import Judge, JudgeConfig, combine, parse_rating, parse_verdict

REPO = Path(__file__).resolve().parents[2]


def test_verdicts_are_parsed_strictly():
    assert parse_rating("Good answer. Rating: [[8]]") == 8
    assert parse_rating("[[3]] at first, then Rating: [[10]]") == 10
    assert parse_rating("Rating: 8/10") is None and parse_rating("[[11]]") is None and parse_rating("[[0]]") is None
    assert parse_verdict("so [[B]]") == "B" and parse_verdict("[[D]]") is None


def test_both_orders_must_agree_for_a_win():
    assert combine("A", "B") == 1.0  # candidate first: A; candidate second: B -> candidate both times
    assert combine("B", "A") == 0.0
    assert combine("A", "A") == 0.5  # the judge always picks the first position: a tie, not a win
    assert combine("C", "C") == 0.5 and combine("A", None) is None


class ScriptedJudge(Backend):
    """A judge backend: rubric prompts get a rating from `rate(response)`, pairwise prompts `pick(a, b)`."""

    name = "scripted-judge"
    needs_rendered_prompts = False

    def __init__(self, rate=None, pick=None):
        super().__init__()
        self.rate, self.pick, self.seen = rate, pick, []

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            user = dict(p.messages)["user"]
            self.seen.append(user)
            if "[The Start of Response A]" in user:
                a = re.search(r"\[The Start of Response A\]\n(.*)\n\[The End of Response A\]", user, re.S)[1]
                b = re.search(r"\[The Start of Response B\]\n(.*)\n\[The End of Response B\]", user, re.S)[1]
                text = f"Verdict: [[{self.pick(a, b)}]]"
            else:
                resp = re.search(r"\[The Start of the Response\]\n(.*)\n\[The End of the Response\]", user, re.S)[1]
                r = self.rate(resp)
                text = "no idea" if r is None else f"Rating: [[{r}]]"
            out.append(Generation(text, [0], 0.0, "eos"))
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError


class Echo(Backend):
    """The model under test: answers every prompt with a fixed text per prompt."""

    name = "echo"

    def __init__(self, answers):
        super().__init__()
        self.answers = answers

    def generate(self, prompts, params):
        return [Generation(next(v for k, v in self.answers.items() if k in p.text), [0], 0.0, "eos") for p in prompts]

    def loglikelihood(self, requests):
        raise NotImplementedError


def _suite(tmp_path: Path, metric: dict) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in [("capital of France?", "Paris"),
                                                                                ("2+2?", "4"), ("sky colour?", "blue")]))
    suite = tmp_path / "judge.yaml"
    suite.write_text(json.dumps({"name": "judged", "task": "generate", "dataset": {"path": "d.jsonl"},
                                 "prompt": {"template": "{q}"}, "references": "a", "metrics": [metric],
                                 "bootstrap": {"n_resamples": 50}}))
    return suite


def test_judge_metric_in_a_suite_rubric_and_pairwise(random_llama, tmp_path, monkeypatch):
    judge = ScriptedJudge(rate=lambda r: {"Paris": 9, "5": 2}.get(r), pick=lambda a, b: "A" if len(a) > len(b) else "B")
    monkeypatch.setattr(Judge, "_load", lambda self: judge)
    monkeypatch.setattr(runner, "load_backend",
                        lambda name, ref, **kw: Echo({"France": "Paris", "2+2": "5", "sky": "blue-ish"}))
    rubric = _suite(tmp_path, {"name": "llm_judge", "model": "some-judge", "mode": "rubric"})
    res = evaluate(str(random_llama), rubric, tmp_path / "v1", use_cache=False)
    m = res["metrics"]["judge_rating"]
    assert m["score"] == pytest.approx((9 + 2) / 2)  # "blue-ish" got no parseable rating: left out
    assert "prompt:llmops-judge-v1" in m["signature"] and "judge:some-judge" in m["signature"]
    rows = [json.loads(x) for x in (tmp_path / "v1" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["judgements"]["judge_rating"] == "Rating: [[9]]"
    assert "[Reference Answer]\nParis" in judge.seen[0]  # the reference is shown to the judge
    # pairwise against the v1 run: the judge prefers the longer answer. v2 is longer on two
    # prompts (wins); on "2+2" both are one character: the judge picks B in both orders — a tie
    monkeypatch.setattr(runner, "load_backend",
                        lambda name, ref, **kw: Echo({"France": "Paris, France", "2+2": "4", "sky": "blue on a clear day"}))
    pair = _suite(tmp_path, {"name": "llm_judge", "model": "some-judge", "mode": "pairwise", "baseline": str(tmp_path / "v1")})
    res2 = evaluate(str(random_llama), pair, tmp_path / "v2", use_cache=False)
    assert res2["metrics"]["judge_win_rate"]["score"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_position_bias_cancels_out(random_llama, tmp_path, monkeypatch):
    monkeypatch.setattr(Judge, "_load", lambda self: ScriptedJudge(pick=lambda a, b: "A"))  # always the first
    monkeypatch.setattr(runner, "load_backend", lambda name, ref, **kw: Echo({"": "x"}))
    evaluate(str(random_llama), _suite(tmp_path, {"name": "exact_match"}), tmp_path / "base", use_cache=False)
    pair = _suite(tmp_path, {"name": "llm_judge", "model": "j", "mode": "pairwise", "baseline": str(tmp_path / "base")})
    res = evaluate(str(random_llama), pair, tmp_path / "cand", use_cache=False)
    assert res["metrics"]["judge_win_rate"]["score"] == pytest.approx(0.5)


def test_judge_metric_option_errors(tmp_path):
    from llmops.eval.suites import load_suite

    with pytest.raises(ConfigError, match="set `model`"):
        load_suite(_suite(tmp_path, {"name": "llm_judge"}))
    with pytest.raises(ConfigError, match="pairwise needs `baseline`"):
        load_suite(_suite(tmp_path, {"name": "llm_judge", "model": "j", "mode": "pairwise"}))
    with pytest.raises(ConfigError, match="unknown option"):
        load_suite(_suite(tmp_path, {"name": "llm_judge", "model": "j", "temperature": 1}))


def test_judge_agreement_with_the_feedback_store(sqlite_url):
    from llmops.eval.judge_agreement import judge_agreement
    from llmops.feedback.store import FeedbackStore

    store = FeedbackStore(sqlite_url)
    alice, bob = store.rater("alice"), store.rater("bob")
    made = store.create_item("q1", [{"text": "great answer"}, {"text": "ok answer"}, {"text": "bad"}])
    for rid, (a, b) in zip(made.response_ids, [(5, 5), (3, 4), (1, 2)]):
        store.add_rating(rid, a, alice)
        store.add_rating(rid, b, bob)
    pair = store.create_item("q2", [{"text": "long good answer"}, {"text": "meh"}])
    store.add_comparison({"item_id": pair.item_id, "chosen": pair.response_ids[0], "rejected": pair.response_ids[1]}, alice)
    judge = Judge(JudgeConfig(model="j"), backend=ScriptedJudge(
        rate=lambda r: {"great answer": 9, "ok answer": 6, "bad": 2}[r], pick=lambda a, b: "A" if len(a) > len(b) else "B"))
    report = judge_agreement(JudgeConfig(model="j"), sqlite_url, judge=judge)
    assert report["ratings"] == {"n": 3, "parse_failures": 0, "spearman": pytest.approx(1.0)}
    assert report["comparisons"]["agreement"] == 1.0 and report["comparisons"]["n"] == 1
    assert report["judge"]["prompt_version"] == "llmops-judge-v1"


@pytest.mark.slow
def test_a_real_local_judge_runs_in_a_suite(tmp_path, monkeypatch):
    """builtin:tiny as its own judge: it rarely writes a parseable verdict, and that is counted."""
    suite = REPO / "eval" / "docstring_summary.yaml"
    text = suite.read_text().replace("  - bleu\n  - rouge", "  - rouge\n  - {name: llm_judge, model: builtin:tiny, max_new_tokens: 16}")
    custom = tmp_path / "judged.yaml"
    custom.write_text(text)
    res = evaluate("builtin:tiny", custom, tmp_path / "out", use_cache=False, limit=2)
    assert "judge_rating" in res["metrics"] and "rougeL" in res["metrics"]
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert all(isinstance(r["judgements"]["judge_rating"], str) for r in rows)
