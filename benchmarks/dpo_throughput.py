"""DPO steps/s and peak memory with and without precomputed reference log-probs.

Each configuration runs `llmops train recipes/dpo.yaml` in its own process (peak RSS is
per process) on the same pairs, model, batch and seed, and the results are printed side
by side with ratios. Precomputation moves one reference pass over the data into setup
(reported separately as setup seconds) and removes the reference forward from every step;
for full fine-tuning it also frees the reference copy of the weights.

    .venv/bin/python benchmarks/dpo_throughput.py [--model builtin:tiny-teacher] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_pairs(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = "file socket thread date path number string queue lock array module value".split()
    with path.open("w") as fh:
        for _ in range(n):
            topic = " ".join(rng.choices(words, k=rng.randint(4, 24)))
            row = {
                "prompt": f"Summarise: {topic}.",
                "chosen": " ".join(rng.choices(words, k=rng.randint(6, 30))),
                "rejected": " ".join(rng.choices(words, k=rng.randint(6, 30))),
            }
            fh.write(json.dumps(row) + "\n")


def run_config(name: str, data: Path, out: Path, args: argparse.Namespace, overrides: list[str]) -> dict:
    cmd = [
        sys.executable, "-m", "llmops", "train", str(REPO / "recipes/dpo.yaml"),
        f"output.dir={out / name}", f"model.base={args.model}", f"data.train={data}", "data.validation_split=0",
        f"data.max_length={args.max_length}", f"train.max_steps={args.steps}", f"train.batch_size={args.batch_size}",
        f"train.log_every={args.steps}", "train.eval_every=0", "train.checkpoint_every=0", "data.limit=null", *overrides,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    total_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    manifest = json.loads((out / name / "manifest.json").read_text())
    metrics = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    train_s = manifest["train_time_s"]
    return {
        "config": name,
        "steps_per_s": args.steps / train_s,
        "pairs_per_s": manifest["pairs_per_s"],
        "peak_mem_mb": max(m.get("peak_mem_mb", 0) for m in metrics),
        # process start, imports, model loading, tokenisation and (if on) the reference pass
        "setup_s": total_s - train_s,
        "final_loss": metrics[-1]["loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dpo-bench-") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "pairs.jsonl"
        write_pairs(data, args.pairs)
        rows = []
        for mode, lora in (("lora", ["lora.enabled=true"]), ("full", ["lora.enabled=false", "train.lr=1e-4"])):
            for pre in (False, True):
                name = f"{mode}-{'precomputed' if pre else 'live'}"
                rows.append(run_config(name, data, tmp_path, args, [*lora, f"dpo.precompute_ref_logps={str(pre).lower()}"]))
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nDPO on {args.model}, batch {args.batch_size} pairs, max_length {args.max_length}, {args.steps} steps")
    print(f"{'config':<18}{'steps/s':>9}{'pairs/s':>9}{'peak MB':>9}{'setup s':>9}{'loss':>8}")
    for r in rows:
        print(f"{r['config']:<18}{r['steps_per_s']:>9.2f}{r['pairs_per_s']:>9.1f}{r['peak_mem_mb']:>9.0f}"
              f"{r['setup_s']:>9.1f}{r['final_loss']:>8.4f}")
    by = {r["config"]: r for r in rows}
    for mode in ("lora", "full"):
        live, pre = by[f"{mode}-live"], by[f"{mode}-precomputed"]
        print(f"{mode}: precomputed/live steps/s = {pre['steps_per_s'] / live['steps_per_s']:.2f}x, "
              f"peak memory = {pre['peak_mem_mb'] / live['peak_mem_mb']:.2f}x")


if __name__ == "__main__":
    main()
