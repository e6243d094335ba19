"""Retraining jobs: every state transition, a job killed mid-run, a restarted watcher, cancellation, the CLI."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llmops.cli.main import main
from llmops.monitor.jobs import JobSpec, JobStore, train_argv

# Succeeds on the attempt given by argv[2]; before that it fails (or, with "sleep", waits to be killed).
SCRIPT = """
import os, sys, time
marker = sys.argv[1]
n = int(open(marker).read()) + 1 if os.path.exists(marker) else 1
open(marker, "w").write(str(n))
print(f"attempt {n}", flush=True)
if sys.argv[3] == "sleep" and n == 1:
    time.sleep(60)
if n < int(sys.argv[2]):
    print("boom: out of memory", flush=True)
    sys.exit(3)
"""


def _spec(tmp_path: Path, succeed_on: int, mode: str = "fail", **kw) -> JobSpec:
    (tmp_path / "job.py").write_text(SCRIPT)
    return JobSpec(argv=[sys.executable, str(tmp_path / "job.py"), str(tmp_path / "marker"), str(succeed_on), mode],
                   launcher="template", model="docs", **kw)


def _wait_status(store: JobStore, job_id: str, statuses: tuple[str, ...], now=None, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store.tick(now)
        job = store.get(job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job stayed {store.get(job_id)['status']}")


def test_queued_running_failed_retried_then_succeeded(sqlite_url, tmp_path):
    store = JobStore(sqlite_url, root=tmp_path / "jobs")
    t0 = datetime.now(timezone.utc)
    job_id = store.submit(_spec(tmp_path, succeed_on=2, backoff_s=60.0), t0)
    assert store.get(job_id)["status"] == "queued"
    store.tick(t0)
    assert store.get(job_id)["status"] == "running" and store.get(job_id)["attempt"] == 1
    job = _wait_status(store, job_id, ("queued",), t0)  # attempt 1 failed: back to queued with backoff
    assert job["exit_code"] == 3 and "boom: out of memory" in job["log_tail"] and "[attempt 1: exit code 3]" in job["log_tail"]
    assert datetime.fromisoformat(job["next_try_at"]) == t0 + timedelta(seconds=60)
    store.tick(t0 + timedelta(seconds=30))
    assert store.get(job_id)["status"] == "queued"  # not due yet
    job = _wait_status(store, job_id, ("succeeded",), t0 + timedelta(seconds=61))
    assert job["attempt"] == 2 and job["exit_code"] == 0


def test_attempts_exhausted_is_failed_with_the_log_tail(sqlite_url, tmp_path):
    store = JobStore(sqlite_url, root=tmp_path / "jobs")
    job_id = store.submit(_spec(tmp_path, succeed_on=9, max_attempts=2, backoff_s=0.0))
    job = _wait_status(store, job_id, ("failed",))
    assert job["attempt"] == 2 and "boom" in job["log_tail"] and "attempt 2" in job["log_tail"]


def test_a_job_killed_mid_run_is_retried_by_a_restarted_watcher(db_url, tmp_path):
    first = JobStore(db_url, root=tmp_path / "jobs")
    job_id = first.submit(_spec(tmp_path, succeed_on=1, mode="sleep", backoff_s=0.0))
    first.tick()
    job = first.get(job_id)
    deadline = time.monotonic() + 20
    while not (tmp_path / "marker").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job["pid"], signal.SIGKILL)  # the runner and the training die, no exit code is written
    first._procs[job["pid"]].wait()
    restarted = JobStore(db_url, root=tmp_path / "jobs")  # a new process: it never held the child
    job = _wait_status(restarted, job_id, ("succeeded",))
    assert job["attempt"] == 2 and "killed mid-run" in job["log_tail"]


def test_a_restarted_watcher_sees_a_job_that_finished_meanwhile(sqlite_url, tmp_path):
    first = JobStore(sqlite_url, root=tmp_path / "jobs")
    job_id = first.submit(_spec(tmp_path, succeed_on=1))
    first.tick()
    first._procs[first.get(job_id)["pid"]].wait()
    assert JobStore(sqlite_url, root=tmp_path / "jobs").poll() and \
        JobStore(sqlite_url, root=tmp_path / "jobs").get(job_id)["status"] == "succeeded"


def test_cancel_terminates_a_running_job_and_runs_the_cancel_command(sqlite_url, tmp_path, capsys):
    store = JobStore(sqlite_url, root=tmp_path / "jobs")
    cancel_marker = tmp_path / "cancelled.txt"
    spec = _spec(tmp_path, succeed_on=1, mode="sleep",
                 cancel_argv=[sys.executable, "-c", f"open({str(cancel_marker)!r}, 'w').write('{{job_id}}')"])
    job_id = store.submit(spec)
    store.tick()
    pid = store.get(job_id)["pid"]
    assert main(["jobs", "cancel", job_id, "--db", sqlite_url]) == 0
    assert f"{job_id}: cancelled" in capsys.readouterr().out
    store.poll()
    job = store.get(job_id)
    assert job["status"] == "cancelled" and cancel_marker.read_text() == job_id
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    else:
        pytest.fail("the job's process is still alive after cancel")
    assert main(["jobs", "list", "--db", sqlite_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "cancelled"
    assert main(["jobs", "show", job_id, "--db", sqlite_url]) == 0
    assert "[cancelled]" in capsys.readouterr().out


def test_launcher_commands():
    local = train_argv("r.yaml", ["a=1"])
    assert local[1:] == ["-m", "llmops", "train", "r.yaml", "a=1", "--resume"]
    acc = train_argv("r.yaml", ["a=1"], "accelerate", num_processes=4)
    assert acc[1:6] == ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "4"]
    slurm = train_argv("r.yaml", ["a=1", "b=2"], "template",
                       template=["sbatch", "--wait", "--job-name", "llmops-{job_id}", "train.sh", "{recipe}",
                                 "{overrides}"], job_id="j1")
    assert slurm == ["sbatch", "--wait", "--job-name", "llmops-j1", "train.sh", "r.yaml", "a=1", "b=2"]


def test_unknown_job_is_a_clear_error(sqlite_url, capsys):
    assert main(["jobs", "show", "nope", "--db", sqlite_url]) != 0
    assert "no job `nope`" in capsys.readouterr().err
