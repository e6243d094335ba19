"""Decoding is exactly what the suite says: a checkpoint whose generation_config.json sets
repetition penalty, n-gram blocking, beams and sampling defaults still decodes like plain
greedy decoding, and results.json records the effective configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from adversarial_checkpoint import ADVERSARIAL, adversarial_copy, plain_greedy
from llmops.eval.backends import GenerationParams, Prompt, load_backend

PROMPTS = ["Return the number of items in the list.", "Open a file and return a stream.",
           "Convert a string to lower case.", "Parse a URL into six components."]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    from llmops.models.refs import resolve

    plain = resolve("builtin:tiny").path
    return plain, adversarial_copy(plain, tmp_path_factory.mktemp("adversarial") / "model")


def test_checkpoint_generation_config_is_ignored(checkpoints) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plain, adversarial = checkpoints
    tok = AutoTokenizer.from_pretrained(str(plain))
    reference = AutoModelForCausalLM.from_pretrained(str(plain), dtype=torch.float32).eval()
    ids = [tok(p)["input_ids"] for p in PROMPTS]
    expected = [plain_greedy(reference, x, 16, [tok.eos_token_id]) for x in ids]

    # The checkpoint's settings do change what plain `generate` produces (so this test can fail).
    naive = AutoModelForCausalLM.from_pretrained(str(adversarial), dtype=torch.float32).eval()
    with torch.no_grad():
        naive_out = [naive.generate(torch.tensor([x]), max_new_tokens=16, pad_token_id=0)[0, len(x):].tolist() for x in ids]
    assert naive_out != expected

    backend = load_backend("hf", str(adversarial), device="cpu", batch_size=4)
    try:
        got = backend.generate([Prompt(p) for p in PROMPTS], GenerationParams(max_new_tokens=16))
        effective = backend.effective_generation_config(GenerationParams(max_new_tokens=16))
    finally:
        backend.close()
    assert [g.token_ids for g in got] == expected
    config = effective["config"]
    assert (config["num_beams"], config["repetition_penalty"], config["no_repeat_ngram_size"]) == (1, 1.0, 0)
    assert config["do_sample"] is False and config["min_length"] == 0
    assert {k: effective["checkpoint_overridden"][k] for k in ("repetition_penalty", "num_beams")} == {
        "repetition_penalty": ADVERSARIAL["repetition_penalty"], "num_beams": ADVERSARIAL["num_beams"]}


def test_results_json_records_effective_generation_config(checkpoints, tmp_path) -> None:
    import json

    from llmops.eval.runner import run_suite

    _, adversarial = checkpoints
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": p, "a": p}) + "\n" for p in PROMPTS))
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\ndataset: {{path: {data}}}\nprompt: {{template: '{{q}}'}}\nreferences: a\n"
                     "generation: {max_new_tokens: 4, repetition_penalty: 1.1}\nmetrics: [exact_match]\n")
    doc = run_suite(str(adversarial), suite, tmp_path / "out", use_cache=False, device="cpu")
    gen = doc["provenance"]["generation_effective"]
    assert gen["engine"] == "transformers.generate"
    assert gen["config"]["repetition_penalty"] == 1.1  # the suite's value, not the checkpoint's 1.8
    assert gen["config"]["num_beams"] == 1 and gen["config"]["no_repeat_ngram_size"] == 0
    assert gen["checkpoint_overridden"]["no_repeat_ngram_size"] == 2


def test_vllm_engine_options_cannot_bring_back_the_checkpoint_generation_config() -> None:
    from llmops.errors import UserError

    with pytest.raises(UserError, match="generation_config.*suite's `generation` section"):
        load_backend("vllm", "builtin:tiny", generation_config="auto")
