"""`llmops bench` evaluates each model in a process of its own (the path vLLM engines take, so
their memory is freed between models), tested here with the hf backend through the same code:
the results equal an in-process bench's, each model ran in its own child that has exited, the
parent never loaded a model, and a bad input in a child is the same clear error in the parent."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from llmops.errors import DataError, UserError
from llmops.eval import isolated, runner
from llmops.eval.bench import run_bench
from llmops.eval.isolated import evaluate_isolated, run_child

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a child per model: Python + torch start-up each


def _perturbed(random_llama: Path, target: Path) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    other = shutil.copytree(random_llama, target)
    torch.manual_seed(1)
    weights = load_file(str(other / "model.safetensors"))
    weights = {k: v + 0.05 * torch.randn_like(v) if v.ndim == 2 else v for k, v in weights.items()}
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    return other


def _suite(tmp_path: Path) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": f"Return the number {i}", "a": "of items."}) + "\n" for i in range(5)))
    gen = tmp_path / "gen.yaml"
    gen.write_text(f"name: gen\ndataset: {{path: {data}}}\nprompt: {{template: '{{q}}'}}\nreferences: a\n"
                   "generation: {max_new_tokens: 4}\nmetrics: [bleu, exact_match]\nbootstrap: {n_resamples: 50}\n")
    return gen


def _pid_gone(pid: int, wait_s: float = 10.0) -> bool:
    """No such process, or only its zombie entry (it holds no memory) — within `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z" or time.monotonic() > deadline:
            return state == "Z"
        time.sleep(0.1)


def test_bench_evaluates_each_model_in_its_own_process(random_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    models = [str(random_llama), str(_perturbed(random_llama, tmp_path / "other"))]
    suites = [_suite(tmp_path)]
    common = dict(speed=False, device="cpu", use_cache=False)
    t0 = time.perf_counter()
    inproc = run_bench(models, suites, tmp_path / "in", isolate=False, **common)
    t_in = time.perf_counter() - t0

    def no_model_here(*args, **kwargs):
        raise AssertionError("the parent process loaded a model")

    monkeypatch.setattr(runner, "load_backend", no_model_here)  # children import their own runner
    t0 = time.perf_counter()
    iso = run_bench(models, suites, tmp_path / "iso", isolate=True, **common)
    print(f"bench of 2 models: in-process {t_in:.1f} s, isolated {time.perf_counter() - t0:.1f} s")

    assert iso["isolated"] is True and inproc["isolated"] is False
    pids = []
    for name in ("gen",):  # one suite: each child costs a Python + torch start-up
        for a, b in zip(inproc["suites"][name], iso["suites"][name], strict=True):
            assert "process" not in a
            proc = b["process"]
            assert proc["exit_code"] == 0 and proc["peak_rss_mb"] > 0
            pids.append(proc["pid"])
            assert b["results"]["timings"]["cached"] is False  # computed in the child, not read from a cache
            assert {k: v["score"] for k, v in a["results"]["metrics"].items()} == \
                   {k: v["score"] for k, v in b["results"]["metrics"].items()}
            assert (Path(a["dir"]) / "samples.jsonl").read_bytes() == (Path(b["dir"]) / "samples.jsonl").read_bytes()
            assert a["results"]["provenance"]["cache_key"] == b["results"]["provenance"]["cache_key"]
        assert inproc["suites"][name][1]["comparison"] == iso["suites"][name][1]["comparison"]
    assert len(set(pids)) == 2 and os.getpid() not in pids  # one fresh process per (suite, model)
    assert all(_pid_gone(pid) for pid in pids)  # each exited (and was reaped): its memory is the system's again


def test_vllm_bench_isolates_by_default(tmp_path, monkeypatch):
    import llmops.eval.bench as bench

    calls = []

    def fake_isolated(ref, suite, out_dir, backend="hf", **overrides):
        calls.append((ref, backend))
        raise DataError("stop here")

    monkeypatch.setattr(bench, "evaluate_isolated", fake_isolated)
    with pytest.raises(DataError, match="stop here"):
        run_bench(["a", "b"], [tmp_path / "s.yaml"], tmp_path / "out", backend="vllm", speed=False)
    assert calls == [("a", "vllm")]


def test_a_childs_bad_input_is_the_same_error_in_the_parent(random_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    suite = tmp_path / "bad.yaml"
    suite.write_text(f"name: bad\ndataset: {{path: {tmp_path / 'missing.jsonl'}}}\nprompt: {{template: '{{q}}'}}\n"
                     "references: a\nmetrics: [bleu]\n")
    with pytest.raises(DataError, match="missing.jsonl"):
        evaluate_isolated(str(random_llama), suite, tmp_path / "out", device="cpu")
    with pytest.raises(Exception, match="JSON values"):
        evaluate_isolated(str(random_llama), suite, tmp_path / "out", device=object())


def test_what_a_child_leaves_behind_is_killed_with_it(tmp_path):
    """A vLLM engine's workers hold GPU memory: a child's leftover processes end with it."""
    pid_file = tmp_path / "grandchild.pid"
    script = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); sys.exit(3)")
    pid, code = run_child([sys.executable, "-c", script])
    grandchild = int(pid_file.read_text())
    assert code == 3 and _pid_gone(pid) and _pid_gone(grandchild)


def test_a_child_that_dies_without_a_result_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(isolated, "run_child", lambda cmd: (4242, -9))
    with pytest.raises(UserError, match=r"m on s.yaml in its own process \(pid 4242\) ended without a result "
                                        r"\(killed by signal 9\)"):
        evaluate_isolated("m", "s.yaml", tmp_path / "out")
