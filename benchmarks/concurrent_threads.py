"""Two training runs on one machine: does each keep >= 40% of its solo speed?

Three scenarios, measured side by side in one invocation (tokens/s of the training loop
from each run's manifest; every run is a fresh ``llmops train`` process on builtin:tiny):

- ``solo``    — one run, default thread policy (all usable CPUs);
- ``naive``   — two concurrent runs that each take every core (``--threads <ncpus>``):
  torch's default, the OpenMP oversubscription the thread policy exists to avoid;
- ``policy``  — two concurrent runs, each pinned to its share of the CPUs (``taskset``),
  so `llmops.train.threads` gives each ``len(sched_getaffinity) // 1`` threads.

Target: ``policy`` keeps >= 0.40 of ``solo`` per run. The machine is shared: the load
average before and after is printed with the numbers, which were taken under that load.

  python benchmarks/concurrent_threads.py [--steps 40] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LLMOPS_THREADS"):
        env.pop(var, None)
    return env


def _recipe(work: Path, name: str, steps: int) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(
        "recipe: sft\nmodel: {base: 'builtin:tiny'}\n"
        "data: {train: 'builtin:docstrings', max_length: 128, validation_split: 0.0}\n"
        f"train: {{max_steps: {steps}, batch_size: 8, log_every: {steps}, lr: 1.0e-3}}\n"
        f"lora: {{enabled: true}}\noutput: {{dir: '{work / name}'}}\n"
    )
    return path


def _start(recipe: Path, threads: int | None, cpus: list[int] | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "llmops", "train", str(recipe)]
    if threads:
        cmd += ["--threads", str(threads)]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _tokens_per_s(proc: subprocess.Popen, run_dir: Path) -> tuple[float, dict]:
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"run failed ({run_dir}): {err[-2000:]}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return float(manifest["tokens_per_s"]), manifest["threads"]


def scenario(work: Path, name: str, steps: int, specs: list[tuple[int | None, list[int] | None]]) -> list[dict]:
    runs = []
    for i, (threads, cpus) in enumerate(specs):
        recipe = _recipe(work, f"{name}-{i}", steps)
        shutil.rmtree(work / f"{name}-{i}", ignore_errors=True)
        runs.append((_start(recipe, threads, cpus), work / f"{name}-{i}"))
    out = []
    for proc, run_dir in runs:
        tps, plan = _tokens_per_s(proc, run_dir)
        out.append({"tokens_per_s": round(tps, 1), "threads": plan})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs at least 2 usable CPUs")
    half = len(cpus) // 2
    load_before = os.getloadavg()
    results: dict[str, list] = {"solo": [], "naive": [], "policy": []}
    with tempfile.TemporaryDirectory(prefix="llmops-threads-") as tmp:
        work = Path(tmp)
        for r in range(args.repeats):  # interleaved so that drifting load hits every scenario
            results["solo"] += scenario(work, f"solo{r}", args.steps, [(None, None)])
            results["naive"] += scenario(work, f"naive{r}", args.steps, [(len(cpus), None), (len(cpus), None)])
            results["policy"] += scenario(work, f"policy{r}", args.steps, [(None, cpus[:half]), (None, cpus[half:])])
    solo = sorted(x["tokens_per_s"] for x in results["solo"])[len(results["solo"]) // 2]

    def worst(name: str) -> float:
        return round(min(x["tokens_per_s"] for x in results[name]) / solo, 3)

    summary = {
        "solo_median_tokens_per_s": solo,
        "naive_worst_fraction_of_solo": worst("naive"),
        "policy_worst_fraction_of_solo": worst("policy"),
        "target": ">= 0.40 per run with the policy",
        "usable_cpus": len(cpus),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "runs": results,
        "note": "shared machine: absolute numbers were taken under the load shown; compare the fractions",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
