"""`llmops bench`: evaluate several checkpoints on the same suites and compare them.

Quality: each checkpoint is evaluated with `llmops.eval.api.evaluate` (so the result
cache applies — the timings of a cached evaluation are the original run's and are marked
"cached"), then tested against the first checkpoint with a paired test per metric: delta,
its 95% interval, Holm-corrected p-values across the suite's metrics, and the direction.

Isolation: with the vllm backend each model is evaluated in a process of its own
(`llmops.eval.isolated`), which exits before the next model loads, so its engine's
accelerator memory is freed between models; ``isolate=True`` does the same for hf
(off by default there: the hf backend frees its model in-process, and a fresh process
costs the Python and torch start-up per model and suite). Results are identical either way.

Speed: separately, an uncached pass per checkpoint in a process of its own
(`llmops.eval.speed`: warm-up, fixed-length decoding, repeats, p50/p95 latency at batch 1
and batched, time to first token, peak memory of that process alone) on the first
suite's prompts.

The output directory holds one eval directory per (suite, checkpoint), ``speed/``,
``bench.json``, ``report.md`` and a self-contained ``report.html`` with both as plots.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from llmops.errors import UserError
from llmops.eval.api import evaluate, paired_compare
from llmops.eval.isolated import evaluate_isolated
from llmops.eval.report import html_page, markdown


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "model"


def speed_prompts(eval_dir: Path, target: Path, limit: int) -> Path:
    """The first `limit` rendered prompts of an eval directory, as the speed pass reads them."""
    rows = [json.loads(line) for line in (eval_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:limit]]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps({"text": r.get("prompt") or r.get("text", ""),
                                          "add_special_tokens": r.get("add_special_tokens", True)}) + "\n" for r in rows))
    return target


def speed_pass(ref: str, prompts: Path, out: Path, backend: str, dtype: str, device: str | None, new_tokens: int,
               batch_size: int, repeats: int) -> dict[str, Any]:
    """Run `llmops.eval.speed` for one model in a fresh Python process; returns its figures."""
    cmd = [sys.executable, "-m", "llmops.eval.speed", "--model", ref, "--prompts", str(prompts), "--out", str(out),
           "--backend", backend, "--dtype", dtype, "--new-tokens", str(new_tokens), "--batch-size", str(batch_size),
           "--repeats", str(repeats)] + (["--device", device] if device else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise UserError(f"speed pass for {ref} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return json.loads(out.read_text())


def run_bench(
    model_refs: list[str], suites: list[str | Path], out_dir: str | Path, backend: str = "hf",
    test: str = "bootstrap", labels: list[str] | None = None, speed: bool = True, speed_prompts_n: int = 16,
    speed_new_tokens: int = 32, speed_batch_size: int = 8, speed_repeats: int = 3, footprint: bool = False,
    isolate: bool | None = None, **overrides: Any,
) -> dict[str, Any]:
    """Evaluate every model on every suite, then time each model uncached in its own
    process (`speed=False` skips that); returns the bench document (also in bench.json).

    `footprint`: also measure weights on disk and the memory each model adds, in a fresh process.
    `isolate`: evaluate each (model, suite) in a process of its own that exits before the next
    (default: with the vllm backend only); each row then records the child's pid and peak RSS.
    """
    if len(model_refs) < 1 or not suites:
        raise UserError("bench needs at least one model reference and one --suite")
    if labels is not None and len(labels) != len(model_refs):
        raise UserError(f"{len(labels)} labels for {len(model_refs)} models")
    labels = labels or model_refs
    out = Path(out_dir)
    isolate = backend == "vllm" if isolate is None else isolate
    bench: dict[str, Any] = {"models": model_refs, "backend": backend, "test": test, "isolated": isolate, "suites": {}}
    feet = {}
    if footprint:
        from llmops.eval.footprint import measure

        feet = {ref: measure(ref) for ref in model_refs}
        bench["footprint"] = feet
    for suite in suites:
        rows = []
        for i, (ref, label) in enumerate(zip(model_refs, labels)):
            run_dir = out / Path(suite).stem / f"{i}-{_slug(label)}"
            process: dict[str, Any] = {}
            if isolate:  # the child's memory (a vLLM engine's GPU memory too) is freed when it exits
                results, process = evaluate_isolated(ref, suite, run_dir, backend=backend, **dict(overrides))
            else:
                results = evaluate(ref, suite, run_dir, backend=backend, **dict(overrides))
            rows.append({"label": label, "model": ref, "dir": str(run_dir), "results": results,
                         **({"process": process} if process else {}),
                         **({"footprint": feet[ref]} if ref in feet else {})})
        name = rows[0]["results"]["suite"]
        for row in rows[1:]:
            row["comparison"] = paired_compare(rows[0]["dir"], row["dir"], method=test,
                                               seed=rows[0]["results"]["provenance"]["seed"])
        bench["suites"][name] = rows
    if speed:
        first = next(iter(bench["suites"].values()))
        prompts = speed_prompts(Path(first[0]["dir"]), out / "speed" / "prompts.jsonl", speed_prompts_n)
        bench["speed"] = [
            {"label": label, "model": ref, **speed_pass(
                ref, prompts, out / "speed" / f"{i}-{_slug(label)}.json", backend, overrides.get("dtype") or "float32",
                overrides.get("device"), speed_new_tokens, speed_batch_size, speed_repeats)}
            for i, (ref, label) in enumerate(zip(model_refs, labels))
        ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(bench, indent=1, ensure_ascii=False))
    (out / "report.md").write_text(markdown(bench))
    (out / "report.html").write_text(html_page(bench))
    return bench
