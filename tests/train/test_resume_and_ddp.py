"""Real processes: SIGKILL + --resume gives bitwise-identical weights; two gloo ranks agree."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from llmops.train.data_order import DataOrder, digest_indices
from llmops.train.engine import Engine
from train.helpers import LLMOPS, load, sft_recipe, subprocess_env, write_recipe

pytestmark = pytest.mark.slow

LORA = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.1}  # dropout: the RNG state must be restored too


def _train_log(run_dir: Path) -> list[tuple]:
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [(r["step"], r["loss"], r["tokens"], r["grad_norm"]) for r in records if r["kind"] == "train"]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, data_file):
    train = {"max_steps": 8, "batch_size": 2, "grad_accum": 2, "checkpoint_every": 2, "keep_last": 2, "log_every": 3}
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    Engine(load(tmp_path, sft_recipe(data_file, reference_dir, lora=LORA, train=train), name="ref.yaml")).run()

    recipe = write_recipe(tmp_path / "killed.yaml", sft_recipe(data_file, killed_dir, lora=LORA, train=train))
    cmd = [*LLMOPS, "train", str(recipe)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (killed_dir / "checkpoints" / "step-4").exists():
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert not (killed_dir / "final").exists()
    assert json.loads((killed_dir / "manifest.json").read_text())["status"] == "running"

    resumed = subprocess.run([*cmd, "--resume"], env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = json.loads((killed_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and len(manifest["attempts"]) == 2
    assert manifest["attempts"][1]["resumed_from_step"] >= 4

    ours = load_file(killed_dir / "final" / "adapter_model.safetensors")
    theirs = load_file(reference_dir / "final" / "adapter_model.safetensors")
    assert ours.keys() == theirs.keys() and ours
    for name in ours:
        assert ours[name].equal(theirs[name]), f"{name} differs after kill + resume"
    # same batches, same dropout masks, same log lines (a checkpoint flushes the log interval)
    assert _train_log(killed_dir) == _train_log(reference_dir)
    assert [step for step, *_ in _train_log(reference_dir)] == [2, 3, 4, 6, 8]
    reference_manifest = json.loads((reference_dir / "manifest.json").read_text())
    assert manifest["tokens_total"] == reference_manifest["tokens_total"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_are_really_two(tmp_path, data_file):
    out = tmp_path / "ddp"
    train = {"max_steps": 3, "batch_size": 2, "grad_accum": 2, "log_every": 1}
    recipe = write_recipe(tmp_path / "ddp.yaml", sft_recipe(data_file, out, lora=LORA, train=train))
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "llmops", "train", str(recipe),
    ]
    done = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["distributed_type"] == "MULTI_CPU"
    ranks = [json.loads((out / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["trainable_sha256"] == ranks[1]["trainable_sha256"], "DDP ranks ended with different weights"
    n_train = manifest["n_train_examples"]
    positions = train["max_steps"] * train["grad_accum"]
    seen = []
    for rank, record in enumerate(ranks):
        order = DataOrder(n_train, train["batch_size"], 2, rank, seed=42)
        expected = [order.batch(p) for p in range(positions)]
        assert record["samples_seen"] == sum(map(len, expected))
        assert record["samples_sha256"] == _digest_of_batches(expected)
        seen.append(set(order.indices(0, min(positions, order.batches_per_epoch))))
    assert not seen[0] & seen[1], "ranks shared training examples within an epoch"
    # 2 ranks x 2 examples x 2 micro-batches per step: twice the tokens of one process
    assert manifest["tokens_total"] > 0


def _digest_of_batches(batches: list[list[int]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for batch in batches:
        h.update(digest_indices(batch).encode())
    return h.hexdigest()
