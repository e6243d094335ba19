"""The result cache is never stale: one test per input that decides the raw outputs (a
miss), and the inputs that do not (a hit, with the metrics recomputed from the cached
outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.eval import runner
from llmops.eval.api import evaluate

RECORDS = [{"q": "Return the number of items", "a": "in the list."}, {"q": "Open the file", "a": "and read it."},
           {"q": "Compute the sum", "a": "of two integers."}, {"q": "Convert a string", "a": "to lower case."}]


class Missed(Exception):
    """The runner tried to load a model: the cache did not answer."""


def _suite(tmp_path: Path, name: str = "suite.yaml", records=RECORDS, **changes) -> Path:
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    body = {"name": "keys", "dataset": {"path": str(data)}, "prompt": {"template": "{q}"}, "references": "a",
            "generation": {"max_new_tokens": 4, "batch_size": 4}, "metrics": ["exact_match"],
            "bootstrap": {"n_resamples": 20}}
    for key, value in changes.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) and key in body else value
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return path


@pytest.fixture
def seeded(random_llama: Path, tmp_path: Path, monkeypatch):
    """A cache holding one fp32 and one bf16 run; returns hit(suite, **overrides) -> bool."""
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    suite = _suite(tmp_path)
    evaluate(str(random_llama), suite, tmp_path / "fp32", device="cpu")
    evaluate(str(random_llama), suite, tmp_path / "bf16", device="cpu", dtype="bfloat16")

    def refuse(*args, **kwargs):
        raise Missed

    monkeypatch.setattr(runner, "load_backend", refuse)
    counter = iter(range(1000))

    def hit(suite_path: Path = suite, model: str = str(random_llama), **overrides) -> bool:
        try:
            doc = evaluate(model, suite_path, tmp_path / f"run{next(counter)}", device=overrides.pop("device", "cpu"),
                           **overrides)
        except Missed:
            return False
        assert doc["provenance"]["cache_hit"] and doc["timings"]["cached"]
        return True

    return hit, suite


def test_same_inputs_hit_and_metric_changes_are_recomputed(seeded, tmp_path: Path) -> None:
    hit, suite = seeded
    assert hit()
    more = _suite(tmp_path, "more.yaml", metrics=["exact_match", "chrf", "bleu"])
    assert hit(more)  # adding metrics never re-runs the model
    doc = json.loads(sorted(tmp_path.glob("run*/results.json"))[-1].read_text())
    assert {"exact_match", "chrf", "bleu"} <= doc["metrics"].keys()
    other_refs = _suite(tmp_path, "refs.yaml", records=[{**r, "a": r["q"]} for r in RECORDS])
    assert hit(other_refs)  # references decide the scores, not the outputs


def test_rendered_prompts_are_in_the_key(seeded, tmp_path: Path) -> None:
    hit, _ = seeded
    assert not hit(_suite(tmp_path, "tpl.yaml", prompt={"template": "Q: {q}"}))
    assert not hit(_suite(tmp_path, "shots.yaml", prompt={"template": "{q}", "fewshot": 1}))
    assert not hit(_suite(tmp_path, "data.yaml", records=[{**r, "q": r["q"] + "."} for r in RECORDS]))


def test_generation_config_is_in_the_key(seeded, tmp_path: Path) -> None:
    hit, suite = seeded
    assert not hit(max_new_tokens=5)
    assert not hit(repetition_penalty=1.2)
    assert not hit(stop=["."])
    assert not hit(temperature=0.7)


def test_model_backend_libraries_device_and_dtype_are_in_the_key(seeded, tmp_path: Path, monkeypatch, random_llama) -> None:
    import shutil

    hit, suite = seeded
    copy = shutil.copytree(random_llama, tmp_path / "copy")
    (copy / "config.json").write_text((copy / "config.json").read_text().replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05'))
    assert not hit(model=str(copy))
    assert not hit(dtype="float16")
    assert not hit(device="cuda:0")
    real = runner.library_versions

    def newer_transformers() -> dict[str, str]:
        return {**real(), "transformers": "99.0.0"}

    monkeypatch.setattr(runner, "library_versions", newer_transformers)
    assert not hit()
    monkeypatch.setattr(runner, "library_versions", lambda: {**real(), "sacrebleu": "99.0.0"})
    assert hit()  # a metric library does not change the outputs


def test_batch_size_is_in_the_key_except_for_fp32_greedy(seeded) -> None:
    hit, _ = seeded
    assert hit(batch_size=2)  # fp32 greedy: batch invariant (tested in test_eval_backend_hf)
    assert hit(dtype="bfloat16", batch_size=4)
    assert not hit(dtype="bfloat16", batch_size=2)  # bf16 outputs depend on the batch
