"""What a model costs to hold: weights on disk, and memory measured in a fresh process.

Peak RSS inside one long-lived process only ever grows (``ru_maxrss``), so the second
model of a benchmark would inherit the first one's peak. `measure` therefore starts a
new Python process per model, records its RSS after the imports (the baseline), loads
the model the way the harness does and runs a short greedy generation, then reports
the peak RSS above that baseline. ``llmops bench --footprint`` adds these columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def weights_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES) / 2**20


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _probe(ref: str, new_tokens: int) -> dict[str, Any]:
    """Runs inside the child process."""
    import time

    import torch

    from llmops.models.loading import load_causal_lm, load_tokenizer
    from llmops.models.refs import resolve

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = resolve(ref)
    tok = load_tokenizer(model)
    base = _rss_mb()
    t0 = time.perf_counter()
    lm = load_causal_lm(model).eval()
    load_s = time.perf_counter() - t0
    ids = tok("def read_config(path):\n    Return the parsed settings.", return_tensors="pt")
    with torch.no_grad():
        t0 = time.perf_counter()
        out = lm.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                          pad_token_id=tok.pad_token_id)
        gen_s = time.perf_counter() - t0
    n = int(out.shape[1] - ids["input_ids"].shape[1])
    return {"weights_mb": round(weights_mb(model.weights_path), 3), "rss_baseline_mb": round(base, 1),
            "peak_rss_mb": round(_rss_mb(), 1), "model_rss_mb": round(_rss_mb() - base, 1), "load_s": round(load_s, 3),
            "bs1_tokens_per_s": round(n / gen_s, 1), "new_tokens": n}


def measure(ref: str, new_tokens: int = 32, timeout: float = 600) -> dict[str, Any]:
    """Footprint of one model, measured in a fresh process (see the module docstring)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, "-m", "llmops.eval.footprint", ref, str(new_tokens)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"footprint probe of {ref} failed: {proc.stderr.strip()[-600:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    from llmops.settings import apply_offline_defaults

    apply_offline_defaults()
    print(json.dumps(_probe(sys.argv[1], int(sys.argv[2]))))
