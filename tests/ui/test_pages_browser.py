"""Every UI page of runs and evaluations in headless Chromium: no console errors, failed or foreign requests;
the compare view end to end; a rater sees no admin control and is refused the admin action.

With LLMOPS_UI_SCREENSHOTS=DIR the views are also saved as DIR/ui-*.png (docs/img holds them).
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

from .helpers import assert_page_clean, login, write_run

pytestmark = pytest.mark.slow
SHOTS = os.environ.get("LLMOPS_UI_SCREENSHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"ui-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def server(ui_env, ui_server_factory, bench_root):
    runs = ui_env["runs"]
    write_run(runs, "sft-lr1e-3", lr=1e-3, steps=40, tags=("baseline",), started="2026-11-01T10:00:00+00:00")
    write_run(runs, "sft-lr3e-3", lr=3e-3, steps=40, started="2026-11-02T10:00:00+00:00")
    write_run(runs, "dpo-after-sft", task="dpo", steps=20, status="failed", started="2026-11-03T10:00:00+00:00")
    return ui_server_factory(ui_env["url"], [runs], ["--evals-dir", str(bench_root / "bench")])


@pytest.fixture
def rater_page(browser, server, keys):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    login(page, server.base, keys.rater)
    yield page
    context.close()


def test_login_page_and_home_are_clean(browser, server, keys):
    page = browser.new_page()
    assert_page_clean(page, server.base + "/login")
    shot(page, "login")
    login(page, server.base, keys.rater)
    assert_page_clean(page, server.base + "/")
    assert "rita · rater" in page.inner_text("header")
    page.click("header form[action='/logout'] button")
    page.wait_for_url(server.base + "/login")
    page.goto(server.base + "/runs")
    assert page.url.startswith(server.base + "/login?next=")  # logged out: back to the login page
    page.close()


def test_every_runs_and_evals_page_is_clean(rater_page, server):
    page, base = rater_page, server.base
    assert_page_clean(page, base + "/runs")
    shot(page, "runs")
    run_links = re.findall(r'href="(/runs/\d+)"', page.content())
    assert len(run_links) == 3
    for link in run_links:
        assert_page_clean(page, base + link)
    page.goto(base + run_links[-1])
    shot(page, "run")
    assert_page_clean(page, base + "/runs?task=sft&status=completed")
    assert_page_clean(page, base + "/runs/studies")
    assert_page_clean(page, base + "/evals")
    shot(page, "evals")
    eval_links = sorted(set(re.findall(r'href="(/evals/(?:run|bench)/[^"]+)"', page.content())))
    assert len(eval_links) == 3
    for link in eval_links:
        assert_page_clean(page, base + html.unescape(link))
        shot(page, "bench" if "/bench/" in link else "eval-run")
    [bench] = [link for link in eval_links if "/bench/" in link]
    page.goto(base + html.unescape(bench))
    [side] = re.findall(r'href="(/evals/compare[^"]+)"', page.content())
    assert_page_clean(page, base + html.unescape(side))
    shot(page, "eval-side-by-side")
    page.select_option("select[name=only]", "differ")
    page.click("#sample-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*only=differ.*"))
    assert_page_clean(page, base + "/runs/999999", expect_status=404)


def test_compare_view_end_to_end(rater_page, server):
    page = rater_page
    page.goto(server.base + "/runs?task=sft")
    button = page.locator("#compare-form button[type=submit]")
    boxes = page.locator("#compare-form input[name=run]")
    assert boxes.count() == 2 and button.is_disabled()
    boxes.nth(0).check()
    assert button.is_disabled()  # one run is not a comparison
    boxes.nth(1).check()
    assert button.is_enabled() and button.inner_text() == "Compare 2 runs"
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    button.click()
    page.wait_for_url(re.compile(r".*/runs/compare\?run=\d+&run=\d+"))
    assert page.locator("h1").inner_text() == "Compare 2 runs"
    assert page.locator(".charts svg.chart").count() == 3
    assert page.locator(".charts svg.chart").first.locator("polyline").count() == 2  # two runs overlaid
    diff = page.locator("#recipe-diff")
    assert "train.lr" in diff.inner_text() and "model.base" not in diff.inner_text()
    page.click("text=Show all keys")
    assert "model.base" in page.locator("#recipe-diff").inner_text()
    shot(page, "compare")
    assert problems == []


def test_rater_gets_no_admin_controls_and_a_403(rater_page, server):
    page = rater_page
    page.goto(server.base + "/runs")
    assert page.locator("#refresh-form").count() == 0
    csrf = page.locator("header input[name=csrf]").get_attribute("value")
    r = page.request.post(server.base + "/runs/refresh", form={"csrf": csrf},
                          headers={"Origin": server.base}, max_redirects=0)
    assert r.status == 403 and "may not ui:runs:refresh" in r.text()


def test_admin_rescans_from_the_page(browser, server, keys, ui_env):
    page = browser.new_page()
    login(page, server.base, keys.admin)
    page.goto(server.base + "/runs")
    assert len(re.findall(r'href="/runs/\d+"', page.content())) == 3
    write_run(ui_env["runs"], "sft-late", started="2026-11-05T10:00:00+00:00")
    page.click("#refresh-form button")
    page.wait_for_url(re.compile(r".*/runs\?scanned=.*"))
    assert "1 indexed" in page.inner_text("[role=status]")
    assert len(re.findall(r'href="/runs/\d+"', page.content())) == 4
    # A forged cross-site post (no CSRF token) is refused even for an admin.
    r = page.request.post(server.base + "/runs/refresh", form={"csrf": "forged"}, max_redirects=0)
    assert r.status == 403
    page.close()
