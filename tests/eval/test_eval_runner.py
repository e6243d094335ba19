"""`eval run` end to end on a small random Llama: results.json with intervals and
provenance, samples.jsonl, the result cache (hit: no model run; changed model: miss),
paired comparison of two result directories, and suite validation errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmops.cli.main import main
from llmops.errors import ConfigError
from llmops.eval import runner
from llmops.eval.api import evaluate, paired_compare

pytestmark = pytest.mark.slow  # end to end: builds a model, runs the CLI

RECORDS = [
    {"question": "Return the number of items", "answer": "in the list."},
    {"question": "Compute the sum", "answer": "of two integers."},
    {"question": "Open the file", "answer": "and read it."},
    {"question": "The quick brown fox", "answer": "jumps over the lazy dog."},
    {"question": "Convert a string", "answer": "to lower case."},
    {"question": "def add(a, b):", "answer": "return a + b"},
]


def _suite(tmp_path: Path, **extra: str) -> Path:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    body = {
        "name": "tiny_gen",
        "task": "generate",
        "dataset": {"path": "data.jsonl"},
        "prompt": {"template": "{question}"},
        "references": "answer",
        "generation": {"max_new_tokens": 6, "batch_size": 4},
        "metrics": ["bleu", "rouge", {"name": "exact_match", "normalize": "squad"}],
        "bootstrap": {"n_resamples": 200},
        **extra,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_run_writes_results_and_samples(random_llama: Path, tmp_path: Path, home: Path) -> None:
    suite = _suite(tmp_path)
    res = evaluate(str(random_llama), suite, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["metrics"].keys() == res["metrics"].keys() == {"bleu", "rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match"}
    for m in saved["metrics"].values():
        assert m["ci_low"] <= m["score"] <= m["ci_high"]
    prov = saved["provenance"]
    assert len(prov["model_hash"]) == 64 and len(prov["suite_hash"]) == 64
    assert prov["generation"]["max_new_tokens"] == 6 and prov["seed"] == 0
    assert {"torch", "transformers", "sacrebleu", "rouge-score"} <= prov["libraries"].keys()
    assert prov["metric_signatures"]["bleu"].startswith("nrefs:1|")
    t = saved["timings"]
    assert t["generated_tokens"] > 0 and t["generated_tokens_per_s"] > 0
    assert 0 < t["latency_p50_s"] <= t["latency_p95_s"] and t["peak_rss_mb"] > 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(RECORDS)))
    assert rows[0]["prompt"] == RECORDS[0]["question"] and rows[0]["references"] == [RECORDS[0]["answer"]]
    assert set(rows[0]["scores"]) == set(saved["metrics"])


def test_cache_hit_does_not_run_the_model_and_model_change_misses(
    random_llama: Path, tmp_path: Path, home: Path, monkeypatch
) -> None:
    suite = _suite(tmp_path)
    first = evaluate(str(random_llama), suite, tmp_path / "a")
    assert first["provenance"]["cache_hit"] is False

    def no_backend(*args, **kwargs):
        raise AssertionError("the model was loaded although the result is cached")

    real_backend = runner.load_backend
    monkeypatch.setattr(runner, "load_backend", no_backend)
    second = evaluate(str(random_llama), suite, tmp_path / "b", batch_size=2)  # batch size is not in the key
    assert second["provenance"]["cache_hit"] is True
    assert second["metrics"] == first["metrics"]
    assert (tmp_path / "a" / "samples.jsonl").read_text() == (tmp_path / "b" / "samples.jsonl").read_text()

    # a changed generation parameter is a different key
    with pytest.raises(AssertionError, match="was loaded"):
        evaluate(str(random_llama), suite, tmp_path / "c", max_new_tokens=5)

    # a changed model (one weight nudged) misses the cache
    import torch
    from safetensors.torch import load_file, save_file

    changed = tmp_path / "changed"
    shutil.copytree(random_llama, changed)
    weights = load_file(str(changed / "model.safetensors"))
    key = next(iter(weights))
    weights[key] = weights[key].clone()
    weights[key].view(-1)[0] += 1.0
    save_file(weights, str(changed / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(AssertionError, match="was loaded"):
        evaluate(str(changed), suite, tmp_path / "d")
    monkeypatch.setattr(runner, "load_backend", real_backend)
    third = evaluate(str(changed), suite, tmp_path / "d")
    assert third["provenance"]["cache_hit"] is False
    assert third["provenance"]["model_hash"] != first["provenance"]["model_hash"]


def test_paired_compare_identical_runs(random_llama: Path, tmp_path: Path, home: Path) -> None:
    suite = _suite(tmp_path)
    evaluate(str(random_llama), suite, tmp_path / "a")
    evaluate(str(random_llama), suite, tmp_path / "b", use_cache=False)
    cmp = paired_compare(tmp_path / "a", tmp_path / "b")
    assert cmp["exact_match"]["test"] == "mcnemar"
    assert cmp["bleu"]["test"] == "paired_bootstrap"
    for name, c in cmp.items():
        assert c["delta"] == 0 and c["p_value"] == pytest.approx(1.0), name


def test_cli_eval_run_json(random_llama: Path, tmp_path: Path, home: Path, capsys) -> None:
    suite = _suite(tmp_path)
    rc = main(["eval", "run", "--model", str(random_llama), "--suite", str(suite), "--out", str(tmp_path / "o"),
               "--limit", "3", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_samples"] == 3


def test_suite_errors(random_llama: Path, tmp_path: Path, home: Path, capsys) -> None:
    bad = _suite(tmp_path, metrics=["bleu", "perplexity"])
    with pytest.raises(ConfigError, match="metrics.1: `perplexity` does not apply to task `generate`"):
        evaluate(str(random_llama), bad, tmp_path / "o")
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\ndataset: {path: d.jsonl}\nprompt: {template: '{q}'}\nreferences: a\nmetrics: [bleu]\n"
                    "generation:\n  max_new_tokns: 3\n")
    assert main(["eval", "run", "--model", str(random_llama), "--suite", str(typo), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "typo.yaml:7: generation.max_new_tokns: unknown key (did you mean `max_new_tokens`?)" in err
    with pytest.raises(ConfigError, match="unknown suite override `max_tokens`"):
        evaluate(str(random_llama), _suite(tmp_path), tmp_path / "o", max_tokens=3)


def test_lora_adapter_directory_is_a_model(random_llama: Path, tmp_path: Path, home: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(random_llama))
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(str(adapter))
    (adapter / "llmops_model.json").write_text(json.dumps({"base_ref": str(random_llama)}))
    suite = _suite(tmp_path)
    res_base = evaluate(str(random_llama), suite, tmp_path / "base", limit=3)
    res_adapter = evaluate(str(adapter), suite, tmp_path / "adapter-eval", limit=3)
    assert res_adapter["provenance"]["cache_hit"] is False
    assert res_adapter["provenance"]["model_hash"] != res_base["provenance"]["model_hash"]
    outputs = [json.loads(x)["output"] for x in (tmp_path / "adapter-eval" / "samples.jsonl").read_text().splitlines()]
    base_outputs = [json.loads(x)["output"] for x in (tmp_path / "base" / "samples.jsonl").read_text().splitlines()]
    assert outputs != base_outputs  # the adapter was applied
