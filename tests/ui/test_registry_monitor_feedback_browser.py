"""Registry, monitoring and feedback pages in headless Chromium: every page clean for both roles, a
promotion end to end through the gates, a refused gate's reason on the page, raters kept out of actions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import assert_page_clean, login
from .seed_b import seed_feedback, seed_monitor, seed_project, seed_registry

pytestmark = pytest.mark.slow
SHOTS = os.environ.get("LLMOPS_UI_SCREENSHOTS")  # a folder: save docs screenshots of these pages


@pytest.fixture(scope="module")
def seeded(ui_env):
    root: Path = ui_env["root"]
    old = os.environ.get("LLMOPS_REGISTRY_ROOT")
    os.environ["LLMOPS_REGISTRY_ROOT"] = str(root / "artifacts")  # the server inherits it
    try:
        seed_registry(ui_env["url"], root)
        seed_feedback(ui_env["url"])
        seed_project(ui_env["url"])
        job_id = seed_monitor(ui_env["url"], root)
        yield {**ui_env, "job_id": job_id}
    finally:
        if old is None:
            os.environ.pop("LLMOPS_REGISTRY_ROOT", None)
        else:
            os.environ["LLMOPS_REGISTRY_ROOT"] = old


@pytest.fixture(scope="module")
def server(seeded, ui_server_factory):
    return ui_server_factory(seeded["url"], [seeded["runs"]])


def _pages(seeded) -> list[str]:
    return ["/registry", "/registry/demo", "/registry/demo/1", "/registry/demo/2", "/monitoring",
            "/monitoring/drift/demo/1", "/monitoring/events", f"/monitoring/jobs/{seeded['job_id']}", "/feedback",
            "/feedback/projects/docstrings"]


@pytest.mark.parametrize("role", ["admin", "rater"])
def test_every_page_loads_clean(browser, server, seeded, keys, role):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, server.base, getattr(keys, role))
    for path in _pages(seeded):
        assert_page_clean(page, server.base + path)
        page.wait_for_load_state("networkidle")  # the favicon too: a later goto must not abort it
        if SHOTS and role == "admin":
            name = path.strip("/").replace("/", "-").replace(seeded["job_id"], "job") or "home"
            page.screenshot(path=str(Path(SHOTS) / f"ui-{name}.png"), full_page=True)
    page.goto(server.base + "/registry/demo/2")
    assert "docstring_summary" in page.inner_text("#evals") and "[0.2700, 0.3500]" in page.inner_text("#evals")
    page.click("svg.lineage a[href='/registry/demo/1']")  # the lineage graph is clickable
    page.wait_for_url(server.base + "/registry/demo/1")
    page.goto(server.base + "/monitoring")
    assert "prompt-drift" in page.inner_text("#alerts") and "firing" in page.inner_text("#alerts")
    assert seeded["job_id"] in page.inner_text("#jobs") and "prompt-drift" in page.inner_text("#incidents")
    page.goto(f"{server.base}/monitoring/jobs/{seeded['job_id']}")
    assert "step 1 loss 2.0" in page.inner_text("#job-log")
    page.goto(server.base + "/feedback")
    assert "misses the return value" in page.inner_text("main") and "demo/2" in page.inner_text("#distribution")
    assert "Returns the parsed config" in page.inner_text("main") and "docstrings" in page.inner_text("#projects")
    page.click("#projects a[href='/feedback/projects/docstrings']")
    page.wait_for_url(server.base + "/feedback/projects/docstrings")
    assert "pat" in page.inner_text("#project-raters") and "quality" in page.inner_text("#quality")
    page.close()


def test_admin_promotes_through_the_gates_and_sees_a_refusal(browser, server, keys):
    page = browser.new_page()
    login(page, server.base, keys.admin)
    assert_page_clean(page, server.base + "/registry/demo/2")
    # staging (recipes/gates/production.yaml): the lineage gate passes.
    page.fill("#promote-form input[name=alias]", "staging")
    page.select_option("#promote-form select[name=gates]", "production")
    page.fill("#promote-form input[name=reason]", "from the browser")
    page.click("#promote-form button[type=submit]")
    page.wait_for_url(server.base + "/registry/demo/2?done=staging")
    assert "staging" in page.inner_text("h1") and "accepted" in page.locator("#promotions ~ .promotion").first.inner_text()
    # production: refused; the page names each failing gate and why.
    page.fill("#promote-form input[name=alias]", "production")
    page.select_option("#promote-form select[name=gates]", "production")
    page.click("#promote-form button[type=submit]")
    page.wait_for_selector("#outcome.refused")
    outcome = page.inner_text("#outcome")
    assert "Refused" in outcome and "reviewed" in outcome and "missing tag(s) reviewed=yes" in outcome
    assert "production" not in page.inner_text("h1")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "ui-registry-promotion-refused.png"), full_page=True)
    page.goto(server.base + "/registry/demo")
    history = page.inner_text("#alias-history")
    assert "staging" in history and "ada" in history and "from the browser" in history
    page.close()


def test_rater_cannot_reach_admin_actions(browser, server, keys):
    page = browser.new_page()
    login(page, server.base, keys.rater)
    page.goto(server.base + "/registry/demo/1")
    assert page.locator("#promote-form").count() == 0 and page.locator("#alias-form").count() == 0
    csrf = page.locator("header form[action='/logout'] input[name=csrf]").get_attribute("value")
    for action in ("promote", "alias"):
        resp = page.context.request.post(f"{server.base}/registry/demo/1/{action}",
                                         form={"alias": "production", "reason": "x", "csrf": csrf},
                                         headers={"origin": server.base})
        assert resp.status == 403, (action, resp.status)
    page.goto(server.base + "/registry/demo")
    assert "production" not in page.inner_text("#versions")
    page.close()
