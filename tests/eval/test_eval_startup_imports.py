"""Start-up guard for `llmops eval run` (issue 14: most of its wall time was Python imports).

Each check runs in a fresh interpreter and inspects `sys.modules`, so it fails on the first
import of a heavy library that the command does not use — a regression test on what is
imported, not a timing test. transformers itself pulls in scipy.optimize, accelerate and
sympy (through torch); those are not ours to avoid and are not listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Never needed by `eval run` on a local model with text metrics (nltk comes with rouge_score's
# RougeScorer; scikit-learn, pandas and pyarrow with nltk; the rest are other commands' layers).
HEAVY = ["nltk", "sklearn", "pandas", "pyarrow", "datasets", "evaluate", "peft", "fastapi", "starlette",
         "uvicorn", "sqlalchemy", "alembic", "matplotlib", "absl"]
# Not needed to build the parser and parse `eval run` arguments (`llmops --help` must stay instant).
HEAVY_FOR_PARSER = HEAVY + ["torch", "transformers", "numpy", "scipy", "sacrebleu", "rouge_score", "accelerate",
                            "pydantic", "yaml", "jinja2", "tokenizers", "safetensors", "huggingface_hub"]


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLMOPS_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    script = code + "\nimport sys, json\nprint('MODULES=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line[len("MODULES="):]))


def test_parsing_eval_run_imports_no_heavy_library(tmp_path: Path) -> None:
    loaded = _modules_after(
        "from llmops.cli.main import build_parser\n"
        "args = build_parser().parse_args(['eval', 'run', '--model', 'builtin:tiny', '--suite', 's.yaml', '--out', 'o'])\n"
        "assert args.func",
        tmp_path,
    )
    assert "llmops" in loaded
    assert not loaded & set(HEAVY_FOR_PARSER), sorted(loaded & set(HEAVY_FOR_PARSER))


def test_eval_run_end_to_end_imports_no_heavy_library(random_llama: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in [
        ("Return the number of items", "in the list."), ("Compute the sum", "of two integers.\nReturn it."),
        ("Open the file", "and read it."), ("def add(a, b):", "return a + b")]))
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({  # JSON is YAML
        "name": "startup", "task": "generate", "dataset": {"path": str(data)}, "prompt": {"template": "{q}"},
        "references": "a", "generation": {"max_new_tokens": 4, "batch_size": "auto"},
        "metrics": ["bleu", "rouge"],
        "bootstrap": {"n_resamples": 50},
    }))
    out = tmp_path / "out"
    loaded = _modules_after(
        "from llmops.cli.main import main\n"
        f"rc = main(['eval', 'run', '--model', {str(random_llama)!r}, '--suite', {str(suite)!r}, '--out', {str(out)!r},"
        " '--no-cache'])\n"
        "assert rc == 0, rc",
        tmp_path,
    )
    results = json.loads((out / "results.json").read_text())
    assert {"bleu", "rouge1", "rougeLsum"} <= set(results["metrics"])  # the metrics really ran
    assert {"torch", "transformers", "sacrebleu", "rouge_score"} <= loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_cli_process_freezes_what_the_heavy_imports_built(random_llama: Path, tmp_path: Path) -> None:
    """`main()` as a process (argv None) pauses the cyclic GC during the torch/transformers
    imports and freezes their objects, so later full collections and the one at exit skip them
    (~1 s of the 200-prompt eval run); `main(argv)` from a library caller freezes nothing."""
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"q": q, "a": "x"}) + "\n" for q in ("Return the number", "Open the file")))
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"name": "gc", "task": "generate", "dataset": {"path": str(data)},
                                 "prompt": {"template": "{q}"}, "references": "a",
                                 "generation": {"max_new_tokens": 2}, "metrics": ["exact_match"]}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLMOPS_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    counts = {}
    for mode in ("process", "library"):
        argv = ["eval", "run", "--model", str(random_llama), "--suite", str(suite), "--out", str(tmp_path / mode), "--no-cache"]
        call = f"sys.argv = ['llmops'] + {argv!r}; rc = main()" if mode == "process" else f"rc = main({argv!r})"
        script = ("import gc, sys\nfrom llmops.cli.main import main\n" + call +
                  "\nassert rc == 0 and gc.isenabled()\nprint('FROZEN=%d' % gc.get_freeze_count())\n")
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts[mode] = int(next(x for x in proc.stdout.splitlines() if x.startswith("FROZEN="))[len("FROZEN="):])
    assert counts["process"] > 100_000, counts  # torch + transformers: ~370k objects
    assert counts["library"] == 0, counts
