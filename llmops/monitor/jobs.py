"""Retraining jobs: each one its own process (or a scheduler submission), tracked in the database.

Why here: both `llmops monitor watch` (retrain actions, layer 4) and `llmops loop` (layer 6)
launch retraining, and `llmops jobs` (CLI) lists and cancels them; the monitor package is
the lowest layer all three may import, and its alembic branch already holds alert state.

A job runs through ``python -m llmops.monitor.jobrunner EXIT_FILE -- ARGV``: the runner
starts ARGV, waits, and writes the exit code to EXIT_FILE atomically. Any process (also a
restarted watcher that never held the child) can therefore tell *finished with code N*
(exit file) from *still running* (pid alive) from *killed mid-run* (pid gone, no exit
file). Launchers: ``local`` (`llmops train`), ``accelerate`` (`accelerate launch
--multi_gpu --num_processes N -m llmops train`), ``template`` (a configured argv such as
``sbatch --wait ...`` or ``kubectl ... --wait`` that blocks until the cluster job ends).

States: queued -> running -> succeeded | failed | cancelled. A failed attempt with attempts
left returns to queued with ``next_try_at = now + backoff * 2**(attempt-1)``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update

from llmops.db import session_factory
from llmops.db.schema import ensure_schema
from llmops.errors import UserError
from llmops.monitor.tables import MONITOR_HEAD, JobRow
from llmops.settings import database_url, llmops_home

TERMINAL = ("succeeded", "failed", "cancelled")
TAIL_CHARS = 4000


@dataclass
class JobSpec:
    argv: list[str]
    launcher: str = "local"
    kind: str = "train"
    model: str = ""
    incident_id: int | None = None
    run_dir: str | None = None
    cwd: str | None = None
    cancel_argv: list[str] | None = None
    max_attempts: int = 3
    backoff_s: float = 300.0
    env: dict[str, str] = field(default_factory=dict)


def train_argv(recipe: str, overrides: list[str], launcher: str = "local", num_processes: int = 2,
               template: list[str] | None = None, job_id: str = "", run_dir: str = "") -> list[str]:
    """The command of a training job (always --resume: a retried attempt continues from its checkpoint)."""
    if launcher == "local":
        return [sys.executable, "-m", "llmops", "train", recipe, *overrides, "--resume"]
    if launcher == "accelerate":
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                str(num_processes), "-m", "llmops", "train", recipe, *overrides, "--resume"]
    if launcher == "template":
        out: list[str] = []
        for part in template or []:
            if part == "{overrides}":
                out.extend(overrides)
            else:
                out.append(part.replace("{recipe}", recipe).replace("{job_id}", job_id).replace("{run_dir}", run_dir))
        return out
    raise UserError(f"unknown launcher `{launcher}` (local, accelerate, template)")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _tail(path: str | None) -> str:
    if not path or not Path(path).exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - TAIL_CHARS))
        return fh.read().decode("utf-8", errors="replace")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_dict(row: JobRow) -> dict[str, Any]:
    return {c: (_aware(getattr(row, c)).isoformat() if isinstance(getattr(row, c), datetime) else getattr(row, c))
            for c in ("id", "kind", "model", "incident_id", "launcher", "argv", "cancel_argv", "cwd", "env", "run_dir",
                      "status",
                      "attempt", "max_attempts", "backoff_s", "next_try_at", "pid", "host", "log_path", "exit_code",
                      "log_tail", "result", "created_at", "started_at", "finished_at")}


def job_cursor(job: dict[str, Any]) -> str:
    """The keyset cursor after `job` (a `job_dict`) for `JobStore.list(before=...)`."""
    return f"{job['created_at']}|{job['id']}"


def log_text(job: dict[str, Any], max_chars: int = 20000) -> str:
    """The end of a job's log: the file while it exists, else the tail kept in the database."""
    path = job.get("log_path")
    if path and Path(path).is_file():
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_chars))
            return fh.read().decode("utf-8", errors="replace")
    return job.get("log_tail") or ""


class JobStore:
    """Submit, start, poll and cancel jobs. Safe to use from several processes on one database."""

    def __init__(self, db_url: str | None = None, root: Path | None = None) -> None:
        self.url = database_url(db_url)
        ensure_schema(self.url, MONITOR_HEAD)
        self._sessions = session_factory(self.url)
        self.root = root or llmops_home() / "jobs"
        self.host = socket.gethostname()
        self._procs: dict[int, subprocess.Popen] = {}  # children of this process (reaped here)

    # -- queries
    def get(self, job_id: str) -> dict[str, Any]:
        with self._sessions() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise UserError(f"no job `{job_id}`")
            return job_dict(row)

    def list(self, status: str | None = None, incident_id: int | None = None, limit: int = 100,
             before: str | None = None) -> list[dict[str, Any]]:
        """Jobs newest first; `before` is `job_cursor(job)` of the last job of the previous page (keyset)."""
        with self._sessions() as s:
            q = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
            if before:
                at_text, _, job_id = before.partition("|")
                try:
                    at = datetime.fromisoformat(at_text)
                except ValueError:
                    raise UserError(f"bad job cursor `{before}` (expected ISO-TIME|JOB_ID)") from None
                q = q.where(or_(JobRow.created_at < at, and_(JobRow.created_at == at, JobRow.id < job_id)))
            if status:
                q = q.where(JobRow.status == status)
            if incident_id is not None:
                q = q.where(JobRow.incident_id == incident_id)
            return [job_dict(r) for r in s.scalars(q)]

    def started_since(self, model: str, since: datetime) -> list[dict[str, Any]]:
        """Training jobs of `model` started at or after `since` (cooldowns across processes and rules files)."""
        with self._sessions() as s:
            rows = s.scalars(select(JobRow).where(JobRow.model == model, JobRow.kind == "train",
                                                  JobRow.created_at >= since, JobRow.status != "cancelled"))
            return [job_dict(r) for r in rows]

    # -- lifecycle
    def submit(self, spec: JobSpec, now: datetime | None = None) -> str:
        job_id = uuid.uuid4().hex[:16]
        with self._sessions.begin() as s:
            s.add(JobRow(id=job_id, kind=spec.kind, model=spec.model, incident_id=spec.incident_id,
                         launcher=spec.launcher, argv=[a.replace("{job_id}", job_id) for a in spec.argv],
                         cancel_argv=[a.replace("{job_id}", job_id) for a in spec.cancel_argv] if spec.cancel_argv else None,
                         cwd=spec.cwd, env=spec.env or None, run_dir=spec.run_dir, status="queued", attempt=0,
                         max_attempts=spec.max_attempts, backoff_s=spec.backoff_s, next_try_at=now or _now(),
                         created_at=now or _now()))
        return job_id

    def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Poll running jobs, then start due queued ones; returns the jobs that changed."""
        now = now or _now()
        changed = self.poll(now)
        with self._sessions() as s:
            due = [r.id for r in s.scalars(select(JobRow).where(JobRow.status == "queued"))
                   if _aware(r.next_try_at) is None or _aware(r.next_try_at) <= now]
        for job_id in due:
            started = self._start(job_id, now)
            if started:
                changed.append(started)
        return changed

    def _start(self, job_id: str, now: datetime) -> dict[str, Any] | None:
        with self._sessions.begin() as s:  # claim: only one process moves queued -> running
            claimed = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == "queued")
                                .values(status="running", attempt=JobRow.attempt + 1, started_at=now,
                                        host=self.host, pid=None, exit_code=None)).rowcount
        if not claimed:
            return None
        row = self.get(job_id)
        attempt_dir = self.root / job_id / f"attempt-{row['attempt']}"
        attempt_dir.mkdir(parents=True, exist_ok=True)
        log_path, exit_file = attempt_dir / "log.txt", attempt_dir / "exit_code"
        argv = [sys.executable, "-m", "llmops.monitor.jobrunner", str(exit_file), "--", *row["argv"]]
        env = os.environ | (row["env"] or {}) | {"LLMOPS_JOB_ID": job_id}
        try:
            with open(log_path, "ab") as out:
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=row["cwd"], env=env, start_new_session=True)
        except OSError as exc:
            self._finish(job_id, None, now, error=f"could not start: {exc}")
            return self.get(job_id)
        self._procs[proc.pid] = proc
        with self._sessions.begin() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(pid=proc.pid, log_path=str(log_path)))
        return self.get(job_id)

    def poll(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Finish running jobs whose process ended (exit file) or vanished (killed mid-run)."""
        now = now or _now()
        changed = []
        with self._sessions() as s:
            running = [job_dict(r) for r in s.scalars(select(JobRow).where(JobRow.status == "running"))]
        for job in running:
            if job["pid"] is None or not job["log_path"]:
                continue  # being started by another process right now
            exit_file = Path(job["log_path"]).parent / "exit_code"
            proc = self._procs.get(job["pid"])
            if proc is not None:
                proc.poll()  # reap our own child so a finished one is not a zombie that looks alive
            if exit_file.exists():
                code = int(exit_file.read_text().strip() or -1)
            elif job["host"] == self.host and not (_alive(job["pid"]) and (proc is None or proc.returncode is None)):
                code = None  # the runner is gone without an exit code: killed mid-run
            else:
                continue
            self._procs.pop(job["pid"], None)
            if self._finish(job["id"], code, now):
                changed.append(self.get(job["id"]))
        return changed

    def _finish(self, job_id: str, code: int | None, now: datetime, error: str | None = None) -> bool:
        with self._sessions.begin() as s:
            row = s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
            if row is None or row.status != "running":
                return False
            row.exit_code, row.finished_at = code, now
            if code == 0:
                row.status = "succeeded"
                return True
            tail = _tail(row.log_path)
            why = error or ("killed mid-run (no exit code)" if code is None else f"exit code {code}")
            row.log_tail = f"[attempt {row.attempt}: {why}]\n{tail}"[-TAIL_CHARS:]
            if row.attempt < row.max_attempts:
                row.status = "queued"
                row.next_try_at = now + timedelta(seconds=row.backoff_s * 2 ** (row.attempt - 1))
            else:
                row.status = "failed"
            return True

    def cancel(self, job_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Stop a job: terminate its process group (and run its cancel command); terminal jobs are left as they are."""
        now = now or _now()
        with self._sessions.begin() as s:
            row = s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
            if row is None:
                raise UserError(f"no job `{job_id}`")
            if row.status in TERMINAL:
                return job_dict(row)
            pid, host, cancel_argv, was = row.pid, row.host, row.cancel_argv, row.status
            row.status, row.finished_at = "cancelled", now
            row.log_tail = (_tail(row.log_path) + "\n[cancelled]")[-TAIL_CHARS:]
        if was == "running" and pid and host == self.host:
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            proc = self._procs.pop(pid, None)
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(pid, signal.SIGKILL)
        if cancel_argv:
            subprocess.run(cancel_argv, check=False, timeout=60, stdin=subprocess.DEVNULL)
        return self.get(job_id)

    def set_result(self, job_id: str, result: dict[str, Any]) -> None:
        with self._sessions.begin() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(result=result))

    def wait(self, job_id: str, timeout_s: float = 600.0, poll_s: float = 0.2) -> dict[str, Any]:
        """Tick until the job is terminal (tests, `llmops monitor check --wait`)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.tick()
            job = self.get(job_id)
            if job["status"] in TERMINAL:
                return job
            time.sleep(poll_s)
        raise TimeoutError(f"job {job_id} still {self.get(job_id)['status']} after {timeout_s} s")


__all__ = ["JobSpec", "JobStore", "TERMINAL", "train_argv"]
