"""8 processes x 25 registrations get versions 1..200 exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops.registry import api

from .helpers import make_model_dir

WORKER = r"""
import os, sys, time
from pathlib import Path
url, art, go, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
from llmops.registry.api import register_version
while not go.exists():
    time.sleep(0.01)
got = [register_version("busy", art, lineage={"run_id": f"{os.getpid()}-{i}"}, db_url=url).version for i in range(n)]
print(" ".join(map(str, got)))
"""

N_PROCS, PER_PROC = 8, 25


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_registrations_get_dense_unique_versions(backend, request, tmp_path: Path, registry_root):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    art = make_model_dir(tmp_path / "m")
    api.get_store(url)  # create the schema once, before the race
    go = tmp_path / "go"
    env = os.environ | {"LLMOPS_REGISTRY_ROOT": str(registry_root)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, url, str(art), str(go), str(PER_PROC)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(N_PROCS)
    ]
    time.sleep(0.5)
    go.touch()
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-2000:]
    handed_out = [int(v) for out, _ in outputs for v in out.split()]
    assert sorted(handed_out) == list(range(1, N_PROCS * PER_PROC + 1))
    stored = [v.version for v in api.list_versions("busy", db_url=url)]
    assert stored == list(range(1, N_PROCS * PER_PROC + 1))
    # every version got its own, complete artifact copy
    assert sorted(p.name for p in (registry_root / "models" / "busy").iterdir()) == sorted(str(v) for v in stored)
    assert not any((registry_root / ".staging").iterdir())
