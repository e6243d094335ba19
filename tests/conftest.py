"""Shared test setup: offline, quiet, a persistent built-in model cache, database URLs.

`LLMOPS_HOME` defaults to `.cache/test-home` in the checkout so that the built-in
models are built once per machine, not once per run. Database fixtures give each test
its own SQLite file or its own PostgreSQL database.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("LLMOPS_HOME", str(REPO / ".cache" / "test-home"))
for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[var] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.pop("LLMOPS_DATABASE_URL", None)
for var in ("LLMOPS_REGISTRY_URL", "LLMOPS_API_KEY", "LLMOPS_REGISTRY_ROOT"):
    os.environ.pop(var, None)  # a developer's registry settings must not leak into tests

PG_ADMIN_URL = os.environ.get("LLMOPS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the PostgreSQL server; skipped only when unreachable and not in CI."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} (required in CI)")
        pytest.skip("PostgreSQL not reachable (set CI=1 to make this a failure)")
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def _pg_dropper(pg_admin_url: str):
    """Drops finished tests' databases on a background thread; waits for the last at session end.

    DROP DATABASE takes 0.3–0.9 s of the server's time (measured, PostgreSQL 15 under load):
    no test needs to wait for the previous test's database to go away.
    """
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    admin = pg_admin_url.replace("+psycopg", "")

    def drop(name: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with ThreadPoolExecutor(1, thread_name_prefix="pg-drop") as pool:
        futures = []
        yield lambda name: futures.append(pool.submit(drop, name))
    for future in futures:
        future.result()  # a failed drop is reported, not left behind silently


@pytest.fixture
def pg_url(pg_admin_url: str, _pg_dropper):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Commits on it do not wait for the WAL flush (synchronous_commit=off): what every other
    session sees is unchanged, only durability across a crash of the shared server is given
    up, which no test relies on (the outage test runs its own server). Measured: a
    PostgreSQL test took 2.8 s wall for 0.4 s of CPU, against 1.0 s for its SQLite twin.
    """
    import psycopg

    name = f"llmops_t_{uuid.uuid4().hex[:12]}"
    admin = pg_admin_url.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from llmops.db.engine import _engine_for

    _engine_for.cache_clear()
    _pg_dropper(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'llmops.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path: Path) -> str:
    """Run a store test on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'llmops.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/browsers.py), launched once per module that asks for it."""
    from browsers import chromium

    with chromium() as b:
        yield b


def pytest_collection_modifyitems(config, items) -> None:
    """Files that hold a `slow` test run first.

    `make test` runs files whole on one of two workers (`--dist loadfile`) in collection
    order; a long file handed out last leaves the other core idle while it runs. Starting
    the long files first lets the many short ones fill in at the end. The sort is stable:
    order within each file, and among the files of each group, is unchanged.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


# Files that share an expensive session-scoped fixture: `--dist loadfile` would hand them to
# different workers, and each worker would build the fixture again (measured: the quickstart
# ~65 s and the two-model bench ~55 s, each built twice). They are scheduled as one unit. A
# file missing here still passes; it only pays for its own copy.
SHARED_FIXTURE_FILES = {
    "tests/loop/test_quickstart.py": "quickstart_fast",
    "tests/loop/test_retrain.py": "quickstart_fast",
    "tests/ui/test_evals_pages.py": "bench_root",
    "tests/ui/test_pages_browser.py": "bench_root",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, except that the files of SHARED_FIXTURE_FILES run on one worker together."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SHARED_FIXTURE_FILES.get(path, path)

    return SharedFixtureScheduling(config, log)


# Opt-in wall-versus-CPU measurement: LLMOPS_TEST_CPU_LOG=<file> appends one JSON line per test
# (setup + call + teardown) with its wall time and the CPU time of this worker process plus the
# children it reaped meanwhile (servers, trainers, `llmops` subprocesses). wall − cpu is time spent
# waiting (sleeps, polling, I/O, another process's CPU): those tests gain from waiting less, not
# from faster code. Children reaped later (a module-scoped server) count towards the test whose
# teardown reaps them. Summarise with `python tests/cpu_report.py <file>`.
_CPU_LOG = os.environ.get("LLMOPS_TEST_CPU_LOG")


def _cpu_seconds() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _CPU_LOG:
        yield
        return
    import json
    import time

    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    yield
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    record = {"test": item.nodeid, "wall": round(wall, 3), "cpu": round(cpu, 3), "load1": round(os.getloadavg()[0], 2)}
    with open(_CPU_LOG, "a") as f:  # one short line per write: appends from two workers do not interleave
        f.write(json.dumps(record) + "\n")
