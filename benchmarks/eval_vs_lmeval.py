"""Wall time of `llmops eval run --no-cache` against lm-evaluation-harness on the same
200-prompt docstring task and model, with the outputs compared sample by sample.

    .venv-lmeval/bin/python benchmarks/eval_vs_lmeval.py [--repeats 3]

(`make test-lmeval` builds .venv-lmeval, which holds both harnesses on the same torch and
transformers.) Both are run as a user would: each command in a fresh process, lm-eval
through its CLI (`lm_eval --model hf ... --include_path`, batch 32, BLEU/chrF/TER), llmops
through its CLI with a suite like eval/docstring_summary.yaml (chat prompt, greedy, 48
tokens, BLEU and ROUGE, batch size auto) on the same 200 prompts. Runs alternate
between the two so that machine load hits both alike; the machine is shared, so the
script prints the load average, the ratio of medians measured in this one run, and the CPU
seconds (user + sys) of each command, which depend much less on the other jobs than wall time.
Target (issue 14): llmops ≤ 0.25 × lm-eval with 200/200 identical outputs.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "eval"))


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys of the command and every process it waited for).

    CPU seconds depend much less on what else the shared machine runs than wall time does."""
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:  # `make bench` runs every benchmark with .venv
        print("skipped: lm-eval is not installed here; run `make test-lmeval` once, then "
              ".venv-lmeval/bin/python benchmarks/eval_vs_lmeval.py")
        return
    from lmeval_tasks import lmeval_model_args, write_tasks

    from llmops.models.refs import resolve

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    model = resolve("builtin:tiny").path
    # Both sides from compiled bytecode, as pip leaves every installed package (lm-eval's venv
    # has its .pyc files): a source checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise
    # recompile ~60 llmops modules on every run (0.1-0.15 s) and time the compiler.
    compileall.compile_dir(str(ROOT / "llmops"), quiet=1)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 200 prompts: the test split has 64 here, so the train split's first 200 (speed, not quality)
        tasks = write_tasks(tmp, n_gen=200, gen_split="train", gen_metrics=("bleu", "rouge"))
        lmeval_cmd = [str(bin_dir / "lm_eval"), "--model", "hf", "--model_args", lmeval_model_args(model, "gen", device=False), "--device", "cpu",
                      "--tasks", "llmops_gen", "--include_path", str(tmp / "lmeval"), "--batch_size", "32",
                      "--apply_chat_template", "--log_samples", "--output_path", str(tmp / "lmeval-out")]
        ours_cmd = [sys.executable, "-m", "llmops.cli.main", "eval", "run", "--model", "builtin:tiny", "--suite",
                    str(tasks["gen"]["suite"]), "--out", str(tmp / "llmops-out"), "--no-cache"]
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {"lm-eval": [], "llmops": []}
        cpus: dict[str, list[float]] = {"lm-eval": [], "llmops": []}
        for _ in range(args.repeats):
            for name, cmd in (("lm-eval", lmeval_cmd), ("llmops", ours_cmd)):
                wall, cpu = timed(cmd, env)
                times[name].append(wall)
                cpus[name].append(cpu)
        load_after = os.getloadavg()

        ours = [json.loads(line)["output"] for line in (tmp / "llmops-out" / "samples.jsonl").read_text().splitlines()]
        sample_file = next((tmp / "lmeval-out").rglob("samples_llmops_gen_*.jsonl"))
        rows = sorted((json.loads(line) for line in sample_file.read_text().splitlines()), key=lambda r: r["doc_id"])
        theirs = [r["filtered_resps"][0] for r in rows]

    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"cpus {os.cpu_count()} · load average before {load_before[0]:.1f} after {load_after[0]:.1f} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} (shared machine: compare the ratio, not the seconds)")
    for name, values in times.items():
        print(f"{name:8s} wall s: " + ", ".join(f"{v:.2f}" for v in values) + f"  (median {med[name]:.2f})")
        print(f"{name:8s} cpu s:  " + ", ".join(f"{v:.2f}" for v in cpus[name]) + f"  (median {med_cpu[name]:.2f})")
    print(f"identical outputs: {same}/{len(theirs)} (llmops {len(ours)} samples)")
    print(f"ratio llmops / lm-eval (medians): {med['llmops'] / med['lm-eval']:.3f}  (target <= 0.25)")
    print(f"cpu ratio llmops / lm-eval (medians of user+sys): {med_cpu['llmops'] / med_cpu['lm-eval']:.3f}")


if __name__ == "__main__":
    main()
