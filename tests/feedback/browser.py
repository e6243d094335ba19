"""Headless Chromium (Debian's, driven by Playwright) for the rater-page tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (make browser installs it)")
        pytest.skip("/usr/bin/chromium is missing (make browser installs it; CI=1 makes this a failure)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def watch(page, base: str) -> dict[str, list[str]]:
    """Requests to anywhere but `base` and uncaught script errors, collected for asserting none happened."""
    seen: dict[str, list[str]] = {"foreign": [], "errors": []}
    page.on("request", lambda req: None if req.url.startswith(base) else seen["foreign"].append(req.url))
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    return seen


def wait_text(page, selector: str, how: str, text: str) -> None:
    """Wait until `selector`'s text `how`s (startsWith, includes, ===) `text`."""
    import json

    cond = f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent"
    expr = f"{cond} === {json.dumps(text)}" if how == "===" else f"({cond} || '').{how}({json.dumps(text)})"
    page.wait_for_function(expr)
