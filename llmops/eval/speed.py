"""Honest speed figures for one model: measured uncached, in a process of its own.

`llmops bench` runs ``python -m llmops.eval.speed`` once per checkpoint, so imports, the
allocator and the peak-memory high-water mark start fresh for every model (peak RSS is
per process; accelerator peaks are also reset). The protocol:

- warm-up: one batched generation that is not timed (kernels, caches, allocator);
- fixed-length decoding: EOS is ignored, every request produces exactly ``new_tokens``
  tokens, so two models are timed on the same amount of work whatever they write;
- batch 1: each prompt alone, ``repeats`` times → per-request latency p50/p95, tokens/s;
- batched: all prompts at ``batch_size`` → per-request latency (a request finishes with
  its batch), tokens/s;
- time to first token: a one-token generation (prefill + first step) at batch 1 and batched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _timed(backend, prompts, params) -> float:
    t0 = time.perf_counter()
    backend.generate(prompts, params)
    return time.perf_counter() - t0


def _summary(latencies: list[float], tokens: int, seconds: float) -> dict[str, float]:
    lat = np.asarray(latencies)
    return {"latency_p50_s": float(np.percentile(lat, 50)), "latency_p95_s": float(np.percentile(lat, 95)),
            "tokens_per_s": tokens / seconds if seconds else float("nan"), "n_requests": len(latencies)}


def measure(backend, prompts: list, new_tokens: int = 32, batch_size: int = 8, repeats: int = 3) -> dict[str, Any]:
    """Speed figures of a loaded backend on `prompts` (see the module docstring)."""
    from llmops.eval.backends import GenerationParams

    fixed = GenerationParams(max_new_tokens=new_tokens, ignore_eos=True)
    first = GenerationParams(max_new_tokens=1, ignore_eos=True)
    if hasattr(backend, "batch_size"):
        backend.batch_size = batch_size
    _timed(backend, prompts[:batch_size], fixed)  # warm-up, not timed
    backend.reset_peak_memory()
    out: dict[str, Any] = {"new_tokens": new_tokens, "batch_size": batch_size, "repeats": repeats,
                           "n_prompts": len(prompts), "fixed_length": True, "warmup_batches": 1}

    if hasattr(backend, "batch_size"):
        backend.batch_size = 1
    single = [_timed(backend, [p], fixed) for _ in range(repeats) for p in prompts]
    ttft_single = [_timed(backend, [p], first) for p in prompts]
    out["batch1"] = {**_summary(single, len(single) * new_tokens, sum(single)),
                     "ttft_p50_s": float(np.median(ttft_single))}

    if hasattr(backend, "batch_size"):
        backend.batch_size = batch_size
    batched, per_request, total = [], [], 0.0
    for _ in range(repeats):
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            elapsed = _timed(backend, chunk, fixed)
            batched.append(elapsed)
            per_request += [elapsed] * len(chunk)
            total += elapsed
    ttft_batched = [_timed(backend, prompts[s : s + batch_size], first) for s in range(0, len(prompts), batch_size)]
    out["batched"] = {**_summary(per_request, repeats * len(prompts) * new_tokens, total),
                      "ttft_p50_s": float(np.median(ttft_batched))}
    out.update(backend.peak_memory_mb())
    return out


def run(model: str, prompts_file: Path, backend_name: str = "hf", dtype: str = "float32", device: str | None = None,
        new_tokens: int = 32, batch_size: int = 8, repeats: int = 3) -> dict[str, Any]:
    from llmops.eval.backends import Prompt, load_backend
    from llmops.eval.fingerprints import library_versions

    rows = [json.loads(line) for line in prompts_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = [Prompt(r["text"], r.get("add_special_tokens", True)) for r in rows]
    t0 = time.perf_counter()
    backend = load_backend(backend_name, model, dtype=dtype, device=device, batch_size=batch_size)
    load_s = time.perf_counter() - t0
    try:
        result = measure(backend, prompts, new_tokens, batch_size, repeats)
    finally:
        backend.close()
    return {**result, "model": model, "backend": backend_name, "dtype": dtype,
            "device": str(getattr(backend, "device", device or backend_name)), "load_seconds": load_s,
            "cached": False, "pid": os.getpid(), "libraries": library_versions()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmops.eval.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", required=True, type=Path, help="JSONL with `text` (and `add_special_tokens`)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--backend", default="hf")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default=None)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    result = run(a.model, a.prompts, a.backend, a.dtype, a.device, a.new_tokens, a.batch_size, a.repeats)
    a.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    from llmops.settings import apply_offline_defaults

    apply_offline_defaults()
    sys.exit(main())
