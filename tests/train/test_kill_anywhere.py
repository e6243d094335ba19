"""Kill anywhere, resume, get the uninterrupted run's weights bit for bit (SFT, DPO, RLOO).

Each case starts a training process that SIGKILLs itself at a named point
(`llmops.train.faults`: mid-step, mid-checkpoint write, after publishing, during
rotation, during validation, while writing final/), resumes the run in this process and
compares final/ and the logged training lines with an uninterrupted run. Processes come
from a forkserver that imported the engine once: no ~5 s interpreter start-up per case,
and — unlike a plain fork of this process — no inherited OpenMP thread pool (libgomp
hangs in a child forked after a multi-threaded parallel region).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
from pathlib import Path

import pytest
from safetensors.torch import load_file

from llmops.train.engine import Engine
from train.helpers import load, make_records, sft_recipe

pytestmark = pytest.mark.slow

# 6 steps of 2 micro-batches; checkpoints at steps 2 and 4 (keep 1: step 4 rotates step 2 out);
# validation (3 batches) before step 1, after step 3 and at the end
TRAIN = {"max_steps": 6, "batch_size": 2, "grad_accum": 2, "checkpoint_every": 2, "keep_last": 1,
         "eval_every": 3, "log_every": 1, "lr": 3e-3}
LORA = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.1}  # dropout: the RNG state must come back too
# (point, pass): passes are counted per process, e.g. step.backward:7 = first micro-batch of step 4
KILLS = [("step.backward", 7), ("checkpoint.write", 2), ("checkpoint.published", 2), ("checkpoint.prune", 1),
         ("eval.batch", 4), ("final.write", 1)]


def toy_reward(prompts, completions):
    return [1.0 - min(len(c), 40) / 40 for c in completions]


def _recipe(task: str, tmp_path: Path, out: Path) -> dict:
    data = tmp_path / f"{task}.jsonl"
    rng = random.Random(0)
    if task == "sft":
        rows = make_records(24)
        r = sft_recipe(data, out, lora=LORA, train=TRAIN, data={"validation_split": 0.25})
    elif task == "dpo":
        rows = [{"prompt": p["prompt"], "chosen": p["completion"], "rejected": rng.choice(["No.", "I will not."])}
                for p in make_records(24)]
        r = sft_recipe(data, out, recipe="dpo", lora=LORA, train=TRAIN, data={"validation_split": 0.25},
                       dpo={"disable_dropout": False})
    else:
        rows = [{"prompt": p["prompt"]} for p in make_records(24)]
        held_out = tmp_path / "rloo-validation.jsonl"  # a separate prompt file (data.validation)
        held_out.write_text("".join(json.dumps({"prompt": p["prompt"]}) + "\n" for p in make_records(6, seed=1)))
        r = sft_recipe(data, out, recipe="rloo", lora=LORA, train=TRAIN, data={"validation": str(held_out)},
                       rloo={"reward_model": f"fn:{__name__}:toy_reward", "k": 2, "max_new_tokens": 6})
    data.write_text("".join(json.dumps(x) + "\n" for x in rows))
    return r


def _train_lines(run_dir: Path) -> list[tuple]:
    rows = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [(r["kind"], r["step"], r.get("loss", r.get("eval_loss"))) for r in rows]


def _child(loaded, fault: str) -> None:
    os.environ["LLMOPS_FAULT"] = fault
    Engine(loaded).run()
    os._exit(0)  # the kill point was never reached: the run completed


_context = None


def _forkserver():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["llmops.train.engine", "llmops.train.tasks.sft", "llmops.train.tasks.dpo",
                                         "llmops.train.tasks.rloo", "peft", "transformers"])
    return _context


def _killed_then_resumed(tmp_path: Path, task: str, fault: str) -> tuple[Path, int]:
    run_dir = tmp_path / f"{task}-{fault.replace(':', '-')}"
    loaded = load(tmp_path, _recipe(task, tmp_path, run_dir), name=f"{run_dir.name}.yaml")
    child = _forkserver().Process(target=_child, args=(loaded, fault))
    child.start()
    child.join(timeout=240)
    code = child.exitcode
    Engine(loaded, resume=True).run()
    return run_dir, code


_references: dict[str, Path] = {}


def _reference(tmp_path_factory, task: str) -> Path:
    if task not in _references:
        root = tmp_path_factory.mktemp(f"ref-{task}")
        run_dir = root / "reference"
        Engine(load(root, _recipe(task, root, run_dir))).run()
        _references[task] = run_dir
    return _references[task]


def _assert_same_run(ours: Path, reference: Path) -> None:
    a = load_file(ours / "final" / "adapter_model.safetensors")
    b = load_file(reference / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    differing = [k for k in a if not a[k].equal(b[k])]
    assert not differing, f"{len(differing)} tensors differ after kill + resume, e.g. {differing[0]}"
    assert _train_lines(ours) == _train_lines(reference)
    assert not list((ours / "checkpoints").glob(".tmp-*")), "a half-written or half-deleted checkpoint survived"
    assert json.loads((ours / "manifest.json").read_text())["status"] == "completed"


CASES = [("sft", f"{p}:{n}") for p, n in KILLS] + [
    ("dpo", "step.backward:7"), ("dpo", "checkpoint.write:2"),
    ("rloo", "step.backward:7"), ("rloo", "eval.batch:4"),
]


@pytest.mark.parametrize(("task", "fault"), CASES)
def test_kill_at_a_named_point_then_resume_is_exact(task, fault, tmp_path, tmp_path_factory):
    reference = _reference(tmp_path_factory, task)
    run_dir, code = _killed_then_resumed(tmp_path, task, fault)
    assert code == -signal.SIGKILL, f"the run was not killed at {fault} (exit {code})"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["attempts"]) == 2
    _assert_same_run(run_dir, reference)


def test_kill_at_a_random_point_then_resume_is_exact(tmp_path, tmp_path_factory):
    """A fresh random point each run (the seed is in the failure message to replay it)."""
    seed = int(os.environ.get("LLMOPS_KILL_SEED", random.SystemRandom().randrange(10**6)))
    rng = random.Random(seed)
    task = rng.choice(["sft", "dpo", "rloo"])
    point = rng.choice([p for p, _ in KILLS])
    fault = f"{point}:{rng.randint(1, 8)}"  # may pass the end of the run: then nothing is killed
    reference = _reference(tmp_path_factory, task)
    run_dir, code = _killed_then_resumed(tmp_path, task, fault)
    assert code in (0, -signal.SIGKILL), f"seed {seed}: {task} {fault} exit {code}"
    try:
        _assert_same_run(run_dir, reference)
    except AssertionError as exc:
        raise AssertionError(f"LLMOPS_KILL_SEED={seed} ({task}, {fault}): {exc}") from None
