"""A real server under test as a subprocess: a free port, start until /healthz answers, stop or SIGKILL.

Shared by the feedback tests (`llmops feedback serve`) and the UI tests (`llmops ui`): the
start/health-wait/stop loop lives here once. Importable from every test package (pytest puts
`tests/` on sys.path: `from servers import ServerProcess, free_port`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LLMOPS = [sys.executable, "-m", "llmops"]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`llmops <args...> --port <free port>` in its own session, its output in a file (never a pipe:
    a server logging under load must not block on a full pipe), shown when it fails to start."""

    name = "server"

    def __init__(self, args: list[str], *, capture_stdout: bool = True) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cmd = [*LLMOPS, *args, "--port", str(self.port)]
        self.capture_stdout = capture_stdout
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()

    def start(self, timeout: float = 60.0):
        """Start the process and return self once GET /healthz answers 200 (or raise with its output)."""
        self.proc = subprocess.Popen(
            self.cmd, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self.log if self.capture_stdout else subprocess.DEVNULL, stderr=self.log, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited (code {self.proc.returncode}): {self.output()[-3000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy within {timeout:.0f} s: {self.output()[-3000:]}")

    def output(self) -> str:
        """Everything the process logged so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group (the server and any workers): no graceful shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL it if it has not exited within 10 s."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
