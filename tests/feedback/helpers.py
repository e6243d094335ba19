"""Helpers of the feedback tests: API keys per role, item creation, a real uvicorn server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Keys:
    admin: str
    service: str
    rater: str
    rater2: str
    client: str = ""

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_keys(db_url: str) -> Keys:
    from llmops.db import session_factory, upgrade
    from llmops.feedback.auth import create_key

    upgrade(db_url)
    with session_factory(db_url)() as s, s.begin():
        tokens = {
            "admin": create_key(s, "admin", "admin").token,
            "service": create_key(s, "service", "model-server").token,
            "rater": create_key(s, "rater", "alice").token,
            "rater2": create_key(s, "rater", "bob").token,
            "client": create_key(s, "client", "app-backend").token,
        }
    return Keys(**tokens)


def new_item(client, keys: Keys, n: int = 2, **extra) -> dict:
    body = {"prompt": "Say hi", "responses": [{"text": f"answer {i}", "model": f"m{i % 2}"} for i in range(n)], **extra}
    r = client.post("/v1/items", json=body, headers=keys.headers("service"))
    assert r.status_code == 201, r.text
    return r.json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`llmops feedback serve` as a real subprocess (so it can be SIGKILLed)."""

    def __init__(self, db_url: str, workers: int = 1, args: list[str] | None = None) -> None:
        self.db_url, self.workers, self.args = db_url, workers, list(args or [])
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Server:
        import tempfile

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # A file, not a pipe: a server logging errors under load must never block on a full pipe.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmops", "feedback", "serve", "--db", self.db_url, "--port", str(self.port),
             "--workers", str(self.workers), *self.args],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.stderr()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn and any workers): no graceful shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
