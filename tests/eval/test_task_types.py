"""Task types and typed requests: the backend answers typed requests (one call per kind and
options, answers in request order), and a new task type runs through the unchanged runner
(suite schema, cache, results.json and samples.jsonl) once it is registered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llmops.errors import ConfigError
from llmops.eval import runner
from llmops.eval.backends import Backend, Generation, GenerationParams, Loglikelihood, Prompt
from llmops.eval.requests import GenerateRequest, LoglikelihoodRequest, RollingLoglikelihoodRequest, answer
from llmops.eval.suites import load_suite
from llmops.eval.task_types import TASK_TYPES, TaskType


class Recorder(Backend):
    """Answers from the request's own text, and records every call it gets."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def generate(self, prompts, params):
        self.calls.append(("generate", [p.text for p in prompts], params.max_new_tokens))
        return [Generation(f"{p.text}/{params.max_new_tokens}", [1], 0.0) for p in prompts]

    def loglikelihood(self, requests):
        self.calls.append(("loglikelihood", [(c.text, x) for c, x in requests]))
        return [Loglikelihood(-float(len(x)), len(x), False) for _, x in requests]

    def loglikelihood_rolling(self, texts, stride=None):
        self.calls.append(("loglikelihood_rolling", list(texts), stride))
        return [Loglikelihood(-2.0 * len(t), len(t), False) for t in texts]


def test_answer_groups_by_kind_and_options_and_keeps_request_order():
    short, long = GenerationParams(max_new_tokens=2), GenerationParams(max_new_tokens=9)
    requests = [GenerateRequest(Prompt("a"), short), LoglikelihoodRequest(Prompt("ctx"), " yes"),
                GenerateRequest(Prompt("b"), long), RollingLoglikelihoodRequest("text", 4),
                GenerateRequest(Prompt("c"), short), LoglikelihoodRequest(Prompt("ctx"), " no!"),
                RollingLoglikelihoodRequest("more text")]
    backend = Recorder()
    got = answer(backend, requests)
    assert [g.text for g in (got[0], got[2], got[4])] == ["a/2", "b/9", "c/2"]
    assert [x.logprob for x in (got[1], got[5], got[3], got[6])] == [-4.0, -4.0, -8.0, -18.0]
    assert backend.calls == [  # one call per (kind, options), in the order each group first appears
        ("generate", ["a", "c"], 2), ("loglikelihood", [("ctx", " yes"), ("ctx", " no!")]),
        ("generate", ["b"], 9), ("loglikelihood_rolling", ["text"], 4), ("loglikelihood_rolling", ["more text"], None),
    ]


def test_a_backend_that_answers_too_few_requests_is_an_error():
    class Short(Recorder):
        def loglikelihood(self, requests):
            return super().loglikelihood(requests)[:-1]

    with pytest.raises(RuntimeError, match="answered 1 of 2 `loglikelihood`"):
        answer(Short(), [LoglikelihoodRequest(Prompt("c"), "x"), LoglikelihoodRequest(Prompt("c"), "y")])


class ReferencePerplexity(TaskType):
    """A task type the harness does not ship: perplexity of the reference given the prompt."""

    name = "reference_perplexity"
    required = ("prompt", "references")
    metric_inputs = ("loglikelihood",)

    def fill(self, sample, record, index):
        sample.references = [record[self.suite.references]]

    def requests(self, sample):
        return [LoglikelihoodRequest(sample.request, " " + sample.references[0])]

    def outputs(self, sample, answers):
        return {"logprob": answers[0].logprob, "n_tokens": answers[0].n_tokens}

    def metric_arguments(self, metric, samples, raw):
        if metric.input_kind == "loglikelihood":
            return [r["logprob"] for r in raw], [r["n_tokens"] for r in raw], [s.references[0] for s in samples]
        return super().metric_arguments(metric, samples, raw)

    def sample_fields(self, sample, raw, i, metrics):
        return {"prompt": sample.prompt, "reference": sample.references[0], "logprob": raw["logprob"]}


def _suite(tmp_path: Path, task: str, metric: str = "perplexity") -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": f"Q{i}", "a": "ans" * (i + 1)}) + "\n" for i in range(4)))
    path = tmp_path / f"{task}.yaml"
    path.write_text(f"name: refppl\ntask: {task}\ndataset: {{path: {data}}}\nprompt: {{template: '{{q}}'}}\n"
                    f"references: a\nmetrics: [{metric}]\nbootstrap: {{n_resamples: 20}}\n")
    return path


def test_a_new_task_type_runs_through_the_unchanged_runner(random_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="unknown task `reference_perplexity`"):
        load_suite(_suite(tmp_path, "reference_perplexity"))

    monkeypatch.setitem(TASK_TYPES, "reference_perplexity", ReferencePerplexity)
    with pytest.raises(ConfigError, match="`bleu` does not apply to task `reference_perplexity`"):
        load_suite(_suite(tmp_path, "reference_perplexity", "bleu"))
    backend = Recorder()
    monkeypatch.setattr(runner, "load_backend", lambda name, ref, **kw: backend)
    suite = _suite(tmp_path, "reference_perplexity")
    doc = runner.run_suite(str(random_llama), suite, tmp_path / "out", device="cpu")

    assert [c[0] for c in backend.calls] == ["loglikelihood"]  # all samples in one call
    assert [x for _, x in backend.calls[0][1]] == [" " + "ans" * (i + 1) for i in range(4)]
    n_tokens = sum(len(" " + "ans" * (i + 1)) for i in range(4))
    assert doc["task"] == "reference_perplexity"
    assert doc["metrics"]["perplexity"]["score"] == pytest.approx(math.exp(n_tokens / n_tokens))
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [r["reference"] for r in rows] == ["ans" * (i + 1) for i in range(4)]
    assert rows[2]["logprob"] == -10.0 and set(rows[2]) >= {"index", "prompt", "scores", "stats"}

    again = runner.run_suite(str(random_llama), suite, tmp_path / "out2", device="cpu")  # the cache answers
    assert again["timings"]["cached"] is True and len(backend.calls) == 1
    assert again["provenance"]["cache_key_parts"]["task"] == "reference_perplexity"
