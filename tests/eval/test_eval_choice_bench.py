"""Multiple-choice accuracy on a hand-built task with known answers (a scripted model
whose log-likelihoods the test sets), and `llmops bench` with its paired tests and
reports (McNemar: identical → p = 1, clearly better → p < 0.05)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmops.cli.main import main
from llmops.eval import runner
from llmops.eval.api import evaluate
from llmops.eval.backends.base import Backend, Loglikelihood

pytestmark = pytest.mark.slow  # end to end: builds a model, runs the CLI

N = 30
QUESTIONS = []
for i in range(N):
    a, b = i % 7 + 1, i // 7 + 2
    choices = [str(a + b), str(a + b + 1), str(a + b + 10)]
    rot = i % 3
    choices = choices[rot:] + choices[:rot]
    QUESTIONS.append({"q": f"What is {a} plus {b}?", "choices": choices, "answer": choices.index(str(a + b))})


class ScriptedBackend(Backend):
    """Log-likelihood -1 for the choice it believes in, -4 otherwise.

    ``skill`` is the share of questions (the first ones) it answers correctly; on the
    others it believes the last choice.
    """

    name = "scripted"
    max_length = 64

    def __init__(self, skill: float) -> None:
        super().__init__()
        self.beliefs = {}
        for i, q in enumerate(QUESTIONS):
            right = i < round(skill * N)
            self.beliefs[f"Q: {q['q']}\nA:"] = q["choices"][q["answer"]] if right else q["choices"][(q["answer"] + 1) % 3]

    def loglikelihood(self, requests):
        out = []
        for ctx, cont in requests:
            lp = -1.0 if cont.strip() == self.beliefs[ctx.text] else -4.0
            out.append(Loglikelihood(lp, 1, lp == -1.0))
            self.stats.scored_tokens += 1
        self.stats.score_seconds += 1e-3
        return out

    def generate(self, prompts, params):
        raise NotImplementedError

    def score_tokens(self, pairs):
        raise NotImplementedError


@pytest.fixture
def mc_suite(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    suite = tmp_path / "mc.yaml"
    suite.write_text(
        "name: arithmetic_mc\ntask: multiple_choice\ndataset: {path: mc.jsonl}\n"
        "prompt: {template: \"Q: {q}\\nA:\"}\nchoices: choices\nanswer: answer\nmetrics: [accuracy]\n"
        "bootstrap: {n_resamples: 300}\n"
    )
    return suite


@pytest.fixture
def two_models(random_llama: Path, tmp_path: Path, monkeypatch) -> tuple[str, str]:
    """Two model directories with different hashes, each scripted with its own skill."""
    weak, strong = tmp_path / "weak", tmp_path / "strong"
    shutil.copytree(random_llama, weak)
    shutil.copytree(random_llama, strong)
    (strong / "generation_config.json").write_text('{"note": "strong"}')
    skills = {str(weak): 0.5, str(strong): 1.0}
    monkeypatch.setattr(runner, "load_backend", lambda name, ref, **kw: ScriptedBackend(skills[ref.ref]))
    return str(weak), str(strong)


def test_accuracy_on_known_answers(mc_suite: Path, two_models, tmp_path: Path) -> None:
    weak, strong = two_models
    res = evaluate(weak, mc_suite, tmp_path / "w")
    assert res["metrics"]["accuracy"]["score"] == pytest.approx(0.5)
    assert res["metrics"]["accuracy"]["ci_low"] < 0.5 < res["metrics"]["accuracy"]["ci_high"]
    assert evaluate(strong, mc_suite, tmp_path / "s")["metrics"]["accuracy"]["score"] == 1.0
    rows = [json.loads(x) for x in (tmp_path / "w" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["prediction"] == rows[0]["gold"] == QUESTIONS[0]["answer"]
    assert rows[-1]["prediction"] != rows[-1]["gold"]


def test_bench_reports_and_paired_tests(mc_suite: Path, two_models, tmp_path: Path, capsys) -> None:
    weak, strong = two_models
    out = tmp_path / "bench"
    rc = main(["bench", weak, weak, strong, "--suite", str(mc_suite), "--out", str(out), "--no-speed",
               "--label", "base", "--label", "same", "--label", "better"])
    assert rc == 0
    bench = json.loads((out / "bench.json").read_text())
    rows = bench["suites"]["arithmetic_mc"]
    assert [r["label"] for r in rows] == ["base", "same", "better"]
    same, better = rows[1]["comparison"]["accuracy"], rows[2]["comparison"]["accuracy"]
    assert same["test"] == "mcnemar" and same["p_value"] == 1.0 and same["delta"] == 0
    assert better["delta"] == pytest.approx(0.5) and better["p_value"] < 0.05
    assert better["direction"] == "better" and same["direction"] == "no difference"
    low, high = better["delta_ci95"]
    assert 0 < low <= 0.5 <= high  # the delta's interval excludes zero
    # Holm over accuracy, accuracy_norm, accuracy_bytes: each adjusted p is at least the raw one
    cmp = rows[2]["comparison"]
    assert all(cmp[m]["p_holm"] >= cmp[m]["p_value"] for m in ("accuracy", "accuracy_norm", "accuracy_bytes"))
    assert better["p_holm"] <= min(1.0, 3 * better["p_value"]) + 1e-12
    md = (out / "report.md").read_text()
    assert "## arithmetic_mc" in md and "| better |" in md and "mcnemar" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 1
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "report.md" in capsys.readouterr().out


def test_bench_needs_same_suite_for_paired_compare(mc_suite: Path, two_models, tmp_path: Path) -> None:
    from llmops.errors import DataError
    from llmops.eval.api import paired_compare

    weak, strong = two_models
    evaluate(weak, mc_suite, tmp_path / "a")
    evaluate(strong, mc_suite, tmp_path / "b", limit=10)
    with pytest.raises(DataError, match="different suites or data"):
        paired_compare(tmp_path / "a", tmp_path / "b")
