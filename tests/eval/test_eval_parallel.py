"""`accelerate launch` with two CPU processes evaluates a shard per rank and gives rank 0 the
same outputs and scores as one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    import torch

    from llmops.cli.main import main

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = ["eval", "run", "--model", "builtin:tiny", "--suite", str(REPO / "eval" / "docstring_summary.yaml"),
            "--limit", "7", "--no-cache", "--json"]
    # the one-process reference runs here (one thread, like each rank): no third interpreter start-up
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*args, "--out", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    two = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
         "-m", "llmops", *args, "--out", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    results = json.loads(two.stdout)  # only rank 0 prints
    assert results["provenance"]["world_size"] == 2 and results["timings"]["world_size"] == 2
    rows = {name: [json.loads(x) for x in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
            for name in ("one", "two")}
    assert [r["output"] for r in rows["two"]] == [r["output"] for r in rows["one"]]
    assert [r["index"] for r in rows["two"]] == list(range(7))
    single = json.loads((tmp_path / "one" / "results.json").read_text())
    for name, m in single["metrics"].items():
        assert results["metrics"][name]["score"] == pytest.approx(m["score"], abs=1e-12), name
