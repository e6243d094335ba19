"""Page helpers of the rater-page tests (the `browser` fixture is tests/conftest.py's)."""

from __future__ import annotations


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
