"""The rater workflow end to end in headless Chromium against a real server: a project with
guidelines, overlap 3 and several question types; answer (scores, critiques per response and on
the comparison, a corrected response), skip, a failed part shown and retried, progress — and
what the store holds afterwards. Then the same page on a phone-sized viewport, by touch."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from llmops.db import session_factory
from llmops.feedback.store import FeedbackStore
from llmops.feedback.tables import Assignment, Comparison, ComparisonEntry, Correction, Item, Rating

from .browser import wait_text, watch
from .helpers import make_keys

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
GUIDELINES = """## How to rate
Rate **factual accuracy** first, then style.

- 1 = wrong, 5 = perfect
- Prefer the *shorter* answer when both are right.

<script>window.pwned = 1</script>
"""
PROJECT = {
    "name": "docs-qa", "guidelines": GUIDELINES, "overlap_k": 3,
    "questions": [
        {"type": "rating", "name": "accuracy", "text": "How accurate is each answer?", "labels": {"1": "wrong", "5": "perfect"}},
        {"type": "preference", "name": "better", "text": "Which answer would you send?"},
        {"type": "critique", "name": "why", "target": "comparison", "required": False},
        {"type": "critique", "name": "notes", "target": "response", "required": False},
        {"type": "correction", "name": "fix", "required": False},
    ],
}


def _setup(db_url: str, server_factory):
    keys = make_keys(db_url)
    srv = server_factory(db_url)
    admin = {"Authorization": f"Bearer {keys.admin}"}
    assert httpx.post(srv.base + "/v1/projects", json=PROJECT, headers=admin).status_code == 201
    store = FeedbackStore(db_url)
    items = [store.create_item(p, [{"text": a, "model": "m-a"}, {"text": b, "model": "m-b"}], project="docs-qa")
             for p, a, b in [("2+2?", "4", "five"), ("Capital of France?", "Paris", "Lyon"), ("Colour of the sky?", "Blue", "Green")]]
    store.create_item("Not in the project.", [{"text": "x"}, {"text": "y"}])
    return keys, srv, items


def _login(page, base: str, token: str) -> None:
    page.goto(base + "/")
    page.fill("#key", token)
    page.press("#key", "Enter")
    page.wait_for_selector("#rate:not([hidden])")


def _texts(page) -> list[str]:
    return [page.locator(".response pre.text").nth(i).inner_text() for i in range(page.locator(".response").count())]


def test_answer_skip_correct_fail_and_progress(browser, sqlite_url, server_factory, tmp_path):
    keys, srv, items = _setup(sqlite_url, server_factory)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    seen = watch(page, srv.base)
    _login(page, srv.base, keys.rater)

    assert page.input_value("#project") == "docs-qa"
    assert page.inner_text("#guidelines-body h2") == "How to rate"
    assert page.inner_text("#guidelines-body strong") == "factual accuracy"
    assert page.locator("#guidelines-body script").count() == 0 and "<script>" in page.inner_text("#guidelines-body")
    assert page.evaluate("window.pwned") is None
    assert "Which answer would you send?" in page.inner_text("#questions")
    assert page.locator(".scale-labels").first.inner_text().split("\n") == ["1 wrong", "5 perfect"]
    wait_text(page, "#progress-text", "startsWith", "You: 0 answered, 0 skipped of 3 items")
    wait_text(page, "#item-id", "===", f"#{items[0].item_id}")

    # item 1: scores, a critique of A, the preference with its reason, a corrected B
    first = _texts(page)
    page.keyboard.press("4")
    page.keyboard.press("c")
    page.keyboard.type("Right and short.")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # no preference yet: required, so nothing is sent
    wait_text(page, "#status", "startsWith", "Still to answer: Which answer would you send?")
    page.keyboard.press("a")
    page.keyboard.press("x")
    page.keyboard.type("A answers the question.")
    page.keyboard.press("Escape")
    page.keyboard.press("e")  # corrected-response editor for B, prefilled with B's text
    assert page.input_value(".response.selected .correction") == first[1]
    page.keyboard.press("Control+a")
    page.keyboard.type("Four (4).")
    page.keyboard.press("Escape")
    page.screenshot(path=str(tmp_path / "rater_page.png"), full_page=True)
    if os.environ.get("LLMOPS_DOCS_SCREENSHOTS"):  # refresh the documentation's picture
        page.screenshot(path=str(REPO / "docs" / "img" / "rater_page.png"), full_page=True)
    page.keyboard.press("Enter")
    wait_text(page, "#status", "===", f"Saved item #{items[0].item_id}.")
    wait_text(page, "#item-id", "===", f"#{items[1].item_id}")
    wait_text(page, "#progress-text", "startsWith", "You: 1 answered, 0 skipped")

    page.keyboard.press("s")  # item 2: skipped (stored; it never comes back to this rater)
    wait_text(page, "#item-id", "===", f"#{items[2].item_id}")
    wait_text(page, "#progress-text", "startsWith", "You: 1 answered, 1 skipped")

    # item 3: the server refuses one score (its scale changed under the page); the rest is stored
    with session_factory(sqlite_url)() as s:
        s.get(Item, items[2].item_id).scale_max = 3
        s.commit()
    third = _texts(page)
    page.keyboard.press("2")
    page.keyboard.press("j")
    page.keyboard.press("5")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    wait_text(page, "#status", "startsWith", "Not saved: 1 of 3 answers failed")
    errors = [page.locator(".response .error").nth(i).inner_text() for i in range(2)]
    assert errors[0] == "" and errors[1].startswith("Rating not saved:") and "scale" in errors[1]
    assert page.inner_text("#item-id") == f"#{items[2].item_id}"  # stays on the item
    assert page.locator(".response").nth(0).get_attribute("class").split().count("done") == 1
    page.keyboard.press("3")
    page.keyboard.press("Enter")  # only the failed score is sent again
    page.wait_for_selector("#empty:not([hidden])")
    wait_text(page, "#progress-text", "startsWith", "You: 2 answered, 1 skipped of 3 items")

    with session_factory(sqlite_url)() as s:
        rater = {r.item_id: r.rater_id for r in s.scalars(select(Rating))}
        ratings = {(r.item_id, r.score, r.critique) for r in s.scalars(select(Rating))}
        comparisons = {c.item_id: (c.kind, c.critique) for c in s.scalars(select(Comparison))}
        corrections = [(c.item_id, c.text) for c in s.scalars(select(Correction))]
        states = {a.item_id: a.state for a in s.scalars(select(Assignment))}
    assert ratings == {(items[0].item_id, 4, "Right and short."), (items[0].item_id, 2, None),
                       (items[2].item_id, 2, None), (items[2].item_id, 3, None)}
    assert comparisons == {items[0].item_id: ("pair", "A answers the question."), items[2].item_id: ("pair", None)}
    assert corrections == [(items[0].item_id, "Four (4).")]
    assert states == {items[0].item_id: "done", items[1].item_id: "skipped", items[2].item_id: "done"}
    assert len(set(rater.values())) == 1

    # through the API: the project's progress, and overlap 3 keeps every item open for other raters
    admin = {"Authorization": f"Bearer {keys.admin}"}
    prog = httpx.get(srv.base + "/v1/projects/docs-qa/progress", headers=admin).json()
    assert (prog["n_items"], prog["n_complete"], prog["n_answers"], prog["n_skips"]) == (3, 0, 2, 1)
    assert [(r["rater"], r["answered"], r["skipped"]) for r in prog["raters"]] == [("alice", 2, 1)]
    bob = {"Authorization": f"Bearer {keys.rater2}"}
    nxt = httpx.post(srv.base + "/v1/projects/docs-qa/next", headers=bob).json()
    assert nxt["item"]["id"] == items[0].item_id
    assert third[0] in {"Blue", "Green"}
    assert seen == {"foreign": [], "errors": []}  # no CDN, no outside requests, no script errors


def test_phone_viewport_by_touch(browser, sqlite_url, server_factory, tmp_path):
    keys, srv, items = _setup(sqlite_url, server_factory)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    page = ctx.new_page()
    seen = watch(page, srv.base)
    _login(page, srv.base, keys.rater2)
    wait_text(page, "#item-id", "===", f"#{items[0].item_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    box = page.locator(".response").first.bounding_box()
    assert box["width"] <= 390 and box["x"] >= 0
    assert page.is_hidden(".keys")  # the keyboard help is not shown on a phone
    assert page.evaluate("document.querySelector('#guidelines').open") is False  # folded: the item comes first
    page.screenshot(path=str(tmp_path / "rater_page_phone.png"))

    for i in range(2):
        page.locator(".response").nth(i).locator(".scores button").nth(4 - i).tap()
    page.locator("#compare label").first.tap()
    page.locator("#submit").tap()
    wait_text(page, "#item-id", "===", f"#{items[1].item_id}")
    page.locator("#skip").tap()
    wait_text(page, "#item-id", "===", f"#{items[2].item_id}")
    wait_text(page, "#progress-text", "startsWith", "You: 1 answered, 1 skipped of 3 items")
    with session_factory(sqlite_url)() as s:
        assert sorted(r.score for r in s.scalars(select(Rating))) == [4, 5]
        assert {a.item_id: a.state for a in s.scalars(select(Assignment))} == {
            items[0].item_id: "done", items[1].item_id: "skipped", items[2].item_id: "claimed"}
    assert seen == {"foreign": [], "errors": []}
    ctx.close()


def test_three_responses_compare_a_against_b(browser, sqlite_url, server_factory):
    """A required preference on an item with more than two responses: the rater compares A and B."""
    keys = make_keys(sqlite_url)
    srv = server_factory(sqlite_url)
    admin = {"Authorization": f"Bearer {keys.admin}"}
    project = {"name": "three", "overlap_k": 1, "questions": [{"type": "rating", "name": "q"},
                                                              {"type": "preference", "name": "p"}]}
    assert httpx.post(srv.base + "/v1/projects", json=project, headers=admin).status_code == 201
    made = FeedbackStore(sqlite_url).create_item("Pick.", [{"text": t} for t in ("x", "y", "z")], project="three")
    page = browser.new_page()
    seen = watch(page, srv.base)
    _login(page, srv.base, keys.rater)
    assert page.inner_text("#compare-legend") == "Which is better? (A or B)"
    shown = _texts(page)
    for i, score in enumerate((2, 4, 3)):
        page.locator(".response").nth(i).locator(".scores button").nth(score - 1).click()
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.wait_for_selector("#empty:not([hidden])")
    by_text = dict(zip(("x", "y", "z"), made.response_ids))
    with session_factory(sqlite_url)() as s:
        ranks = {e.response_id: e.rank for e in s.scalars(select(ComparisonEntry))}
        assert s.scalar(select(Assignment.state)) == "done"
    assert ranks == {by_text[shown[1]]: 1, by_text[shown[0]]: 2}
    assert seen == {"foreign": [], "errors": []}
