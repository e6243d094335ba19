"""Evaluation throughput: batched vs one-at-a-time generation, vLLM vs hf, metric speed.

    .venv/bin/python benchmarks/eval_throughput.py            # hf + metrics
    .venv-vllm/bin/python benchmarks/eval_throughput.py       # adds vLLM vs hf (make test-vllm builds it)

Everything is measured side by side in one run and printed as ratios; the machine may
be shared, so compare ratios, not absolute numbers, across runs. Targets: batched
generation at batch 32 ≥ 8× one-at-a-time on CPU (built-in model, greedy fp32).
"""

from __future__ import annotations

import argparse
import os
import random
import time


def _prompts(n: int) -> list:
    from llmops.data import load_records
    from llmops.eval.backends import Prompt
    from llmops.models.loading import load_tokenizer

    tok = load_tokenizer("builtin:tiny")
    records = load_records("builtin:docstrings", split="test", limit=n)
    return [
        Prompt(tok.apply_chat_template([{"role": "user", "content": r["prompt"][:400]}], tokenize=False,
                                       add_generation_prompt=True), add_special_tokens=False)
        for r in records
    ]


def _tok_s(backend, prompts, params) -> tuple[float, list]:
    t0 = time.perf_counter()
    gens = backend.generate(prompts, params)
    elapsed = time.perf_counter() - t0
    return sum(len(g.token_ids) for g in gens) / elapsed, gens


def generation(n: int, new_tokens: int) -> None:
    from llmops.eval.backends import GenerationParams, load_backend

    prompts = _prompts(n)
    params = GenerationParams(max_new_tokens=new_tokens)
    hf = load_backend("hf", "builtin:tiny", dtype="float32", batch_size=1)
    hf.generate(prompts[:2], params)  # warm-up
    one, gens1 = _tok_s(hf, prompts, params)
    hf.batch_size = 32
    batched, gens32 = _tok_s(hf, prompts, params)
    same = sum(a.token_ids == b.token_ids for a, b in zip(gens1, gens32))
    print(f"generation, builtin:tiny, {n} prompts x ≤{new_tokens} new tokens, greedy fp32")
    print(f"  hf bs=1  {one:9.0f} tok/s")
    print(f"  hf bs=32 {batched:9.0f} tok/s   ratio {batched / one:.1f}x (target ≥ 8x); identical outputs {same}/{n}")
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("  vllm: not installed in this environment (run with .venv-vllm/bin/python)")
        hf.close()
        return
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    vl = load_backend("vllm", "builtin:tiny", dtype="float32", enforce_eager=True)
    vl.generate(prompts[:2], params)
    v, gens_v = _tok_s(vl, prompts, params)
    same = sum(a.token_ids == b.token_ids for a, b in zip(gens32, gens_v))
    print(f"  vllm     {v:9.0f} tok/s   ratio vs hf bs=32 {v / batched:.2f}x; identical outputs {same}/{n}")
    vl.close()
    hf.close()


def metrics(n: int) -> None:
    import numpy as np
    import sacrebleu
    from rouge_score.rouge_scorer import RougeScorer

    from llmops.eval.metrics import build_metric
    from llmops.eval.stats import bootstrap_ci

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(2000)]
    hyps = [" ".join(rng.choice(vocab) for _ in range(rng.randint(10, 30))) for _ in range(n)]
    refs = [" ".join(rng.choice(vocab[:500]) for _ in range(rng.randint(10, 30))) for _ in range(n)]
    print(f"metric scoring, {n:,} pairs (llmops vs calling the reference library directly)")

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    for name, ref_fn in (
        ("bleu", lambda: sacrebleu.BLEU().corpus_score(hyps, [refs])),
        ("chrf", lambda: sacrebleu.CHRF().corpus_score(hyps, [refs])),
    ):
        t_ref, _ = timed(ref_fn)
        metric = build_metric(name)
        t_ours, res = timed(lambda: metric.compute(hyps, [[r] for r in refs]))
        t_ci, _ = timed(lambda: bootstrap_ci(res[name].stats, lambda s: metric.reduce(name, s), 1000))
        print(f"  {name:6s} ours {t_ours:6.2f} s  reference {t_ref:6.2f} s  ratio {t_ref / t_ours:.2f}x; "
              f"1000-resample CI {t_ci:.2f} s ({n / t_ours:,.0f} pairs/s)")
    m = 2000
    t_ref, _ = timed(lambda: sacrebleu.TER().corpus_score(hyps[:m], [refs[:m]]))
    t_ours, _ = timed(lambda: build_metric("ter").compute(hyps[:m], [[r] for r in refs[:m]]))
    print(f"  ter    ours {t_ours:6.2f} s  reference {t_ref:6.2f} s  ratio {t_ref / t_ours:.2f}x (first {m:,} pairs)")
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
    t_ref, _ = timed(lambda: np.mean([scorer.score(r, h)["rouge1"].fmeasure for h, r in zip(hyps, refs)]))
    t_ours, _ = timed(lambda: build_metric("rouge").compute(hyps, [[r] for r in refs]))
    print(f"  rouge  ours {t_ours:6.2f} s  reference {t_ref:6.2f} s  ratio {t_ref / t_ours:.2f}x ({n / t_ours:,.0f} pairs/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()
    from llmops.settings import apply_offline_defaults

    apply_offline_defaults()
    if not args.skip_generation:
        generation(args.prompts, args.new_tokens)
    metrics(args.pairs)


if __name__ == "__main__":
    main()
