"""Answer extraction (filters), several samples per prompt (majority vote, pass@k), suites
over datasets users bring (field mapping, hub ids behind the download switch) and `--limit`
that evaluates a subset of the full run."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from llmops.errors import ConfigError, DataError
from llmops.eval import runner
from llmops.eval.api import evaluate
from llmops.eval.backends import Backend, Generation
from llmops.eval.filters import FilterSpec, aggregate, apply_filters, majority_vote
from llmops.eval.metrics import build_metric
from llmops.eval.metrics.sampling import pass_at_k

REPO = Path(__file__).resolve().parents[2]


def _filters(*specs: dict) -> list:
    from pydantic import TypeAdapter

    return TypeAdapter(list[FilterSpec]).validate_python(list(specs))


def test_filters_extract_answers_in_order():
    text = "Step: 1,200 + 34 = 1,234.\nThe answer is 1,234. Next question"
    assert apply_filters(_filters({"type": "first_number"}), text) == "1200"
    assert apply_filters(_filters({"type": "take_first"}, {"type": "last_number"}), text) == "1234"
    assert apply_filters(_filters({"type": "regex", "pattern": r"answer is ([\d,]+)", "group": 1}), text) == "1,234"
    assert apply_filters(_filters({"type": "regex", "pattern": r"(\d)", "group": 1, "select": "last"}), text) == "4"
    assert apply_filters(_filters({"type": "regex", "pattern": "nomatch"}), text) == "[invalid]"
    assert apply_filters(_filters({"type": "first_number", "fallback": "none"}), "no digits") == "none"
    assert apply_filters(_filters({"type": "strip"}, {"type": "lower"}), "  Paris \n") == "paris"
    assert apply_filters(_filters({"type": "last_number"}), "it is 3.0") == "3"


def test_bad_filters_are_clear_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="invalid regular expression"):
        _filters({"type": "regex", "pattern": "("})
    with pytest.raises(ValidationError, match="first_number"):
        _filters({"type": "frist_number"})


def test_majority_vote_is_deterministic_and_ties_go_to_the_first_seen():
    assert majority_vote(["3", "5", "5", "3", "7"]) == "3"  # 3 and 5 tie; 3 came first
    assert majority_vote(["7", "5", "5"]) == "5"
    assert aggregate(["7", "5", "5"], "first") == "7"


def test_pass_at_k_matches_the_combinatorial_definition():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 0, 4) == 0.0
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 30)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_pass_at_k_metric_scores_every_sample():
    metric = build_metric("pass_at_k", k=[1, 2])
    res = metric.compute([["8", "9", "8"], ["1", "2", "3"]], [["8"], ["4"]])
    assert res["pass@1"].score == pytest.approx((2 / 3 + 0) / 2)
    assert res["pass@2"].score == pytest.approx((1 - math.comb(1, 2) / math.comb(3, 2) + 0) / 2)
    with pytest.raises(DataError, match="at least 2 samples"):
        metric.compute([["8"], ["1"]], [["8"], ["4"]])


# ---------------------------------------------------------------- suites and the runner


class ScriptedGenerator(Backend):
    """Answers each prompt from a script, cycling through its outputs; records the prompts."""

    name = "scripted"
    max_length = 256

    def __init__(self, script: dict[str, list[str]]) -> None:
        super().__init__()
        self.script, self.calls, self.prompts = script, {}, []

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            self.prompts.append(p.text)
            key = next(k for k in self.script if p.text.endswith(k))
            i = self.calls.get(key, 0)
            self.calls[key] = i + 1
            text = self.script[key][i % len(self.script[key])]
            out.append(Generation(text, [1] * len(text.split()), 0.001, "length"))
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError

    def score_tokens(self, pairs):
        raise NotImplementedError


RECORDS = [{"q": f"{a} plus {b}?", "gold": str(a + b)} for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 1), (2, 2)]]


def _suite(tmp_path: Path, **extra) -> Path:
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    body = {
        "name": "sums", "task": "generate",
        "dataset": {"path": "problems.jsonl", "fields": {"question": "q", "answer": "gold"}},
        "prompt": {"template": "Q: {question}\nA:"},
        "references": "answer",
        "generation": {"max_new_tokens": 8, "temperature": 0.8, "n": 3},
        "filters": [{"type": "last_number"}],
        "aggregate": "majority_vote",
        "metrics": ["exact_match", {"name": "pass_at_k", "k": [1, 3]}],
        "bootstrap": {"n_resamples": 50},
        **extra,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(body))
    return path


def test_majority_vote_and_pass_at_k_through_the_runner(random_llama, tmp_path, monkeypatch):
    script = {
        "1 plus 2?\nA:": ["it is 3", "it is 4", "so 3"],      # majority 3 (right), 2 of 3 right
        "3 plus 4?\nA:": ["7", "8", "8"],                    # majority 8 (wrong), 1 of 3 right
        "5 plus 6?\nA:": ["no idea", "12", "13"],            # majority [invalid] (first seen), 0 right
        "7 plus 8?\nA:": ["15", "15", "15"],
        "9 plus 1?\nA:": ["10", "1", "0"],
        "2 plus 2?\nA:": ["5", "5", "4"],
    }
    backend = ScriptedGenerator(script)
    monkeypatch.setattr(runner, "load_backend", lambda name, ref, **kw: backend)
    res = evaluate(str(random_llama), _suite(tmp_path), tmp_path / "out", use_cache=False)
    right = [2, 1, 0, 3, 1, 1]
    assert res["metrics"]["exact_match"]["score"] == pytest.approx(3 / 6)  # majority right on prompts 1, 4, 5
    assert res["metrics"]["pass@1"]["score"] == pytest.approx(sum(c / 3 for c in right) / 6)
    assert res["metrics"]["pass@3"]["score"] == pytest.approx(5 / 6)
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["answers"] == ["3", "4", "3"] and rows[0]["answer"] == "3"
    assert rows[2]["answer"] == "[invalid]" and rows[2]["outputs"][1] == "12"
    assert len(backend.prompts) == 6 * 3


def test_suite_rules_for_sampling_and_filters(tmp_path):
    from llmops.eval.suites import load_suite

    with pytest.raises(ConfigError, match="temperature 0 gives n identical"):
        load_suite(_suite(tmp_path, generation={"n": 3, "temperature": 0.0}))
    with pytest.raises(ConfigError, match=r"pass@3 needs generation.n >= 3"):
        load_suite(_suite(tmp_path, generation={"n": 2, "temperature": 0.5}))
    with pytest.raises(ConfigError, match="filters.0"):
        load_suite(_suite(tmp_path, filters=[{"type": "regex"}]))


def test_field_mapping_names_a_missing_column(random_llama, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "load_backend", lambda name, ref, **kw: ScriptedGenerator({"": ["1"]}))
    suite = _suite(tmp_path, dataset={"path": "problems.jsonl", "fields": {"question": "query", "answer": "gold"}})
    with pytest.raises(DataError, match=r"dataset.fields: record 0 has no column\(s\) \['query'\]"):
        evaluate(str(random_llama), suite, tmp_path / "out", use_cache=False)


def test_limit_evaluates_a_subset_of_the_full_run_with_the_same_fewshot(random_llama, tmp_path, monkeypatch):
    """Few-shot examples come from the whole pool, so --limit never changes a prompt."""
    seen = []

    def fake_backend(name, ref, **kw):
        backend = ScriptedGenerator({"A:": ["1"]})
        seen.append(backend)
        return backend

    monkeypatch.setattr(runner, "load_backend", fake_backend)
    suite = _suite(tmp_path, prompt={"template": "Q: {question}\nA:", "fewshot": 2},
                   generation={"max_new_tokens": 4}, metrics=["exact_match"], aggregate="first")
    evaluate(str(random_llama), suite, tmp_path / "full", use_cache=False)
    evaluate(str(random_llama), suite, tmp_path / "part", use_cache=False, limit=2)
    full, part = seen[0].prompts, seen[1].prompts
    assert len(full) == 6 and part == full[:2]


def test_hub_datasets_stay_offline_unless_downloads_are_allowed(monkeypatch):
    from llmops.data import load_records

    monkeypatch.delenv("LLMOPS_ALLOW_DOWNLOADS", raising=False)
    with pytest.raises(DataError, match="LLMOPS_ALLOW_DOWNLOADS=1"):
        load_records("hub:llmops-test/definitely-not-cached", split="test")
    import datasets

    calls = []

    def fake_load(name, config=None, split=None):
        calls.append((name, config, split, datasets.config.HF_HUB_OFFLINE))
        return [{"question": "q", "answer": "a"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert load_records("hub:org/set:main", split="test") == [{"question": "q", "answer": "a"}]
    assert calls == [("org/set", "main", "test", True)]  # offline while downloads are off
    monkeypatch.setenv("LLMOPS_ALLOW_DOWNLOADS", "1")
    was = datasets.config.HF_HUB_OFFLINE
    load_records("hub:org/set", split="train")
    assert calls[-1] == ("org/set", None, "train", was)


def test_builtin_arithmetic_is_deterministic_disjoint_and_correct():
    from llmops.data import load_records

    splits = {s: load_records("builtin:arithmetic", split=s) for s in ("train", "validation", "test")}
    assert [len(v) for v in splits.values()] == [500, 100, 200]
    assert load_records("builtin:arithmetic", split="test") == splits["test"]
    questions = [{r["question"] for r in v} for v in splits.values()]
    assert not (questions[0] & questions[1] or questions[0] & questions[2] or questions[1] & questions[2])
    for row in splits["test"]:
        expr = row["solution"].split(" = ")[0]
        assert str(eval(expr)) == row["answer"]  # noqa: S307 - our own generated digits and operators


def test_the_shipped_arithmetic_suite_runs_on_the_builtin_model(tmp_path):
    res = evaluate("builtin:tiny", REPO / "eval" / "arithmetic.yaml", tmp_path / "out", use_cache=False, limit=2)
    assert set(res["metrics"]) == {"exact_match", "pass@1", "pass@4"}
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["outputs"]) == 4 and len(r["answers"]) == 4 for r in rows)
    assert res["provenance"]["limit"] == 2


def test_pass_at_k_evaluate_module_loads_offline_and_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    import evaluate

    module = evaluate.load(str(REPO / "eval" / "metrics" / "pass_at_k"))
    out = module.compute(predictions=[["8", "9", "8"], ["1", "2", "3"]], references=["8", "4"], k=[1, 2])
    direct = build_metric("pass_at_k", k=[1, 2]).compute([["8", "9", "8"], ["1", "2", "3"]], [["8"], ["4"]])
    assert out["pass@1"] == pytest.approx(direct["pass@1"].score) and out["pass@2"] == pytest.approx(direct["pass@2"].score)
