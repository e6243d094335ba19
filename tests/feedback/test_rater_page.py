"""The rater page end to end in a real headless Chromium (Debian's, driven by Playwright):
enter the key once, score with the keyboard, pick the better response, write a critique,
submit — and the rating, critique and comparison are in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from llmops.db import session_factory
from llmops.feedback.tables import Comparison, ComparisonEntry, Item, Rating
from llmops.feedback.store import FeedbackStore

from .helpers import make_keys

pytestmark = pytest.mark.slow


def test_rating_from_the_page_lands_in_the_database(browser, sqlite_url, server_factory):
    keys = make_keys(sqlite_url)
    store = FeedbackStore(sqlite_url)
    first = store.create_item("What is 2+2?", [{"text": "4", "model": "m-a"}, {"text": "<b>five</b>", "model": "m-b"}],
                              context="Arithmetic quiz")
    second = store.create_item("Name a colour.", [{"text": "Blue"}, {"text": "Seven"}])
    srv = server_factory(sqlite_url)

    page = browser.new_page()
    foreign: list[str] = []
    page.on("request", lambda req: None if req.url.startswith(srv.base) else foreign.append(req.url))
    page.goto(srv.base + "/")
    page.fill("#key", keys.rater)
    page.press("#key", "Enter")
    page.wait_for_selector("#rate:not([hidden])")
    assert page.inner_text("#prompt") == "What is 2+2?"
    assert page.inner_text("#context") == "Arithmetic quiz"
    shown = [page.locator(".response pre").nth(i).inner_text() for i in range(2)]
    assert sorted(shown) == ["4", "<b>five</b>"]  # shown as text, not HTML (in this rater's blind order)

    page.keyboard.press("4")  # score response A
    page.keyboard.press("c")  # critique of A
    page.keyboard.type("A is right.")
    page.keyboard.press("Escape")
    page.keyboard.press("j")  # next response
    page.keyboard.press("2")  # score response B
    page.keyboard.press("a")  # A is better
    page.keyboard.press("c")  # critique of B
    page.keyboard.type("B is wrong.")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Saved item')")
    page.wait_for_function(f"document.querySelector('#item-id').textContent === '#{second.item_id}'")

    with session_factory(sqlite_url)() as s:
        ratings = {r.response_id: (r.score, r.critique) for r in s.scalars(select(Rating))}
        ranks = {e.response_id: e.rank for e in s.scalars(select(ComparisonEntry))}
    by_text = dict(zip(["4", "<b>five</b>"], first.response_ids))
    a, b = by_text[shown[0]], by_text[shown[1]]  # A and B are the page's first and second response
    assert ratings == {a: (4, "A is right."), b: (2, "B is wrong.")}  # each response keeps its own critique
    assert ranks == {a: 1, b: 2}

    page.reload()  # the key is remembered for the tab: straight back to rating
    page.wait_for_function(f"document.querySelector('#item-id').textContent === '#{second.item_id}'")
    assert page.is_hidden("#login")
    assert foreign == []  # no CDN, no outside requests


def test_comparison_only_advances_and_failures_are_shown(browser, sqlite_url, server_factory):
    """A preference alone is a complete answer; a critique is never dropped; a failed bulk element is shown."""
    keys = make_keys(sqlite_url)
    store = FeedbackStore(sqlite_url)
    first = store.create_item("Pick one.", [{"text": "x"}, {"text": "y"}])
    second = store.create_item("Rate these.", [{"text": "p"}, {"text": "q"}])
    third = store.create_item("Last.", [{"text": "z"}])
    srv = server_factory(sqlite_url)
    page = browser.new_page()
    page.goto(srv.base + "/")
    page.fill("#key", keys.rater)
    page.press("#key", "Enter")
    page.wait_for_function(f"document.querySelector('#item-id').textContent === '#{first.item_id}'")

    page.keyboard.press("3")  # one of two scored, no preference: not a complete answer
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#status').textContent.includes('score every response')")
    page.keyboard.press("c")
    page.keyboard.type("too short")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("c")  # a critique of B, which has no score: refused, not dropped
    page.keyboard.type("off topic")
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("x")  # the preference's own critique
    page.keyboard.type("B is clearer.")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#status').textContent.includes('has a critique but no score')")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('#item-id').textContent === '#{second.item_id}'")

    with session_factory(sqlite_url)() as s:  # the server refuses what the page shows 1..5 for
        s.get(Item, second.item_id).scale_max = 3
        s.commit()
    page.keyboard.press("2")
    page.keyboard.press("j")
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Not saved: 1 of 2')")
    errors = [page.locator(".response .error").nth(i).inner_text() for i in range(2)]
    assert errors[0] == "" and "outside the item's scale" in errors[1]
    assert page.inner_text("#item-id") == f"#{second.item_id}"  # stays on the item
    page.keyboard.press("3")  # fix B and retry: only B is sent again
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('#item-id').textContent === '#{third.item_id}'")

    with session_factory(sqlite_url)() as s:
        ratings = sorted((r.item_id, r.score, r.critique) for r in s.scalars(select(Rating)))
        compared = [(c.item_id, c.kind, c.critique) for c in s.scalars(select(Comparison))]
    assert compared == [(first.item_id, "pair", "B is clearer.")]
    assert sorted(ratings)[:2] == sorted([(first.item_id, 3, "too short"), (first.item_id, 2, "off topic")])
    assert sorted(ratings)[2:] == [(second.item_id, 2, None), (second.item_id, 3, None)]
