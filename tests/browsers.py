"""Debian's headless Chromium driven by Playwright, for the browser tests of every area.

The `browser` fixture (tests/conftest.py) launches it once per test module. Not once per
session: while a sync Playwright is running, its event loop is the thread's running loop,
so `asyncio.run()` in any later test of the same worker fails with "cannot be called from a
running event loop" (measured; tests/feedback/test_security.py uses asyncio.run). Playwright
never downloads a browser of its own here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[object]:
    """A launched headless Chromium (a Playwright `Browser`); skipped without it, a failure under CI=1."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (make browser installs it)")
        pytest.skip(f"{CHROMIUM} is missing (make browser installs it; CI=1 makes this a failure)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
