"""Side by side with lm-evaluation-harness 0.4.x (its hf backend) on the same local tasks and
model: generate-until outputs identical per sample and BLEU/chrF/TER equal; multiple-choice
acc, acc_norm and acc_bytes equal; rolling log-likelihood word/byte perplexity and bits per
byte equal, with lm-eval's windows.

Runs where lm-eval is importable (``make test-lmeval`` builds ``.venv-lmeval``); skips
elsewhere. The table in docs/evaluation.md comes from `python tests/eval/test_lmeval_parity.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lmeval_tasks import MODEL, SAME_METRIC, run_lmeval, write_tasks

pytestmark = pytest.mark.timeout(1800)


def side_by_side(out: Path, task: str) -> dict:
    """Both harnesses on `task`: {metrics: {lm-eval name: (lm-eval, llmops)}, samples: [(lm-eval, llmops)]}."""
    from llmops.eval.runner import run_suite
    from llmops.models.refs import resolve

    tasks = write_tasks(out)
    model_path = resolve(MODEL).path
    theirs = run_lmeval(out, model_path, task)
    ours = run_suite(MODEL, tasks[task]["suite"], out / f"llmops-{task}", use_cache=False, device="cpu")
    rows = [json.loads(line) for line in (out / f"llmops-{task}" / "samples.jsonl").read_text().splitlines()]
    metrics = {m: (v, ours["metrics"][SAME_METRIC[m]]["score"]) for m, v in theirs["metrics"].items()}
    if task == "gen":
        pairs = [(s["filtered_resps"][0], r["output"]) for s, r in zip(theirs["samples"], rows)]
    elif task == "mc":
        pairs = [([float(x[0]) for x in s["resps"] for x in x], r["logprobs"]) for s, r in zip(theirs["samples"], rows)]
    else:
        pairs = [(float(s["resps"][0][0]), r["logprob"]) for s, r in zip(theirs["samples"], rows)]
    assert len(pairs) == len(rows) == len(theirs["samples"])
    return {"metrics": metrics, "samples": pairs}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    pytest.importorskip("lm_eval", reason="lm-eval not installed (make test-lmeval builds an environment with it)")
    return tmp_path_factory.mktemp("lmeval")


def test_generate_until_outputs_identical_and_bleu_chrf_ter_equal(workdir: Path) -> None:
    res = side_by_side(workdir, "gen")
    different = [i for i, (a, b) in enumerate(res["samples"]) if a != b]
    assert not different, f"{len(different)} outputs differ, first {different[0]}: {res['samples'][different[0]]}"
    assert sum(bool(a) for a, _ in res["samples"]) > len(res["samples"]) // 2  # real generations
    for name, (theirs, ours) in res["metrics"].items():
        assert ours == pytest.approx(theirs, abs=1e-9), name


def test_multiple_choice_acc_acc_norm_acc_bytes_equal(workdir: Path) -> None:
    res = side_by_side(workdir, "mc")
    for theirs, ours in res["samples"]:
        assert ours == pytest.approx(theirs, abs=1e-4)
    for name, (theirs, ours) in res["metrics"].items():
        assert ours == pytest.approx(theirs, abs=1e-12), name


def test_rolling_loglikelihood_perplexities_equal(workdir: Path) -> None:
    res = side_by_side(workdir, "ppl")
    for theirs, ours in res["samples"]:
        assert ours == pytest.approx(theirs, rel=1e-5)
    for name, (theirs, ours) in res["metrics"].items():
        assert math.isfinite(ours) and ours == pytest.approx(theirs, rel=1e-5), name


if __name__ == "__main__":  # the side-by-side table for docs/evaluation.md
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print("| task | metric | lm-eval 0.4 | llmops | per-sample agreement |\n|---|---|---|---|---|")
        for task in ("gen", "mc", "ppl"):
            res = side_by_side(Path(tmp) / task, task)
            if task == "gen":
                agree = f"{sum(a == b for a, b in res['samples'])}/{len(res['samples'])} outputs identical"
            else:
                flat = [(x, y) for a, b in res["samples"] for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b])]
                agree = f"max abs Δ loglik {max(abs(x - y) for x, y in flat):.1e} over {len(flat)}"
            for name, (theirs, ours) in res["metrics"].items():
                print(f"| {task} | {name} | {theirs:.6f} | {ours:.6f} | {agree} |")
        sys.stdout.flush()
