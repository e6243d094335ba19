"""PostgreSQL stopped mid-load: the server answers 503 (never a false 201) while it is down, is not
ready, recovers by itself when it is back, and loses no acknowledged write.

The shared server on 5432 is never touched: the test starts its own throwaway PostgreSQL
(initdb + pg_ctl from the installed binaries, as the `postgres` user when run as root) on
a free loopback port, and skips with the reason when the binaries are not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import Server, free_port

pytestmark = pytest.mark.slow


class OwnPostgres:
    def __init__(self, root: Path) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (needed for the outage test)")
        self.bin = Path(bins[-1]).parent
        self.root, self.data, self.port = root, root / "data", free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: cannot start a private PostgreSQL")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-1000:]}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="llmops-pg-"))  # pytest's tmp dirs are not reachable by `postgres`
    try:
        pg = OwnPostgres(root)
        pg.start()
        yield pg
        try:
            pg.stop("fast")
        except RuntimeError:
            pass  # already stopped
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_stopped_mid_load(own_postgres: OwnPostgres, monkeypatch) -> None:
    from sqlalchemy import select

    from llmops.db import session_factory
    from llmops.db.engine import _engine_for
    from llmops.feedback.tables import Rating

    from .test_reliability import seed

    url = own_postgres.url
    from llmops.db.engine import upgrade

    upgrade(url)
    responses, tokens = seed(url, n_items=40, n_raters=4)  # enough work to outlast the outage on an idle machine
    _engine_for.cache_clear()
    monkeypatch.setenv("LLMOPS_PG_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("LLMOPS_FEEDBACK_AUTH_TTL_S", "1")  # so the outage need not outlast the default 5 s
    srv = Server(url).start()
    acked: dict[int, int] = {}  # rating id → k
    statuses: list[int] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        k = worker
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            while not stop.is_set() and k < len(responses) * 4:
                body = {"response_id": responses[k // 4], "score": 1 + k % 5}
                h = {"Authorization": f"Bearer {tokens[k % 4]}", "Idempotency-Key": f"k{k}"}
                try:
                    r = c.post("/v1/ratings", json=body, headers=h)
                except httpx.HTTPError:
                    statuses.append(0)
                    time.sleep(0.05)
                    continue
                statuses.append(r.status_code)
                if r.status_code == 201:
                    acked[r.json()["id"]] = k
                    k += 4
                elif r.status_code in (409,):
                    k += 4  # stored by an attempt whose answer was lost: the key replays or the pair exists
                else:
                    assert r.status_code == 503, r.text  # never 500, never a false success
                    time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert len(acked) > 0, statuses[-5:]
        own_postgres.stop("immediate")  # a crash: no shutdown checkpoint; returns once the server is gone
        # Counted after the stop returned, not before it: on a busy machine pg_ctl itself can take long
        # enough for a few more commits to land while the server is still up (9 > 8 flaked once in CI).
        before = len(acked)
        time.sleep(3)  # past the key cache's TTL (1 s) plus the connect timeout: authentication needs the database too
        down_statuses = list(statuses[-20:])
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            ready_down = c.get("/readyz").status_code
            live_down = c.get("/healthz").status_code
        during = len(acked)
        own_postgres.start()
        deadline = time.monotonic() + 60
        while len(acked) <= during + 10:
            assert time.monotonic() < deadline, f"no recovery: {statuses[-10:]}"
            time.sleep(0.2)
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            ready_up = c.get("/readyz").status_code
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        srv.stop()
    assert 503 in down_statuses and ready_down == 503 and live_down == 200 and ready_up == 200
    assert during - before <= 4 * 2  # with the database gone, at most the answers already in flight
    _engine_for.cache_clear()
    with session_factory(url)() as s:
        stored = set(s.scalars(select(Rating.id)))
    assert set(acked) <= stored, f"lost acknowledged ratings: {sorted(set(acked) - stored)[:10]}"
