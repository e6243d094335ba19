"""UI auth: API-key login, signed session cookie, deny by default, CSRF, trusted hosts, security headers."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from llmops.feedback.policies import Role
from llmops.ui import create_app
from llmops.ui.policies import UI_POLICY, UiAction
from llmops.ui.session import COOKIE, SessionCodec, safe_next

from .helpers import make_keys

# Hand-written: who may do what (the test of the table, not a copy of it).
EXPECTED = {
    UiAction.VIEW: {Role.ADMIN, Role.SERVICE, Role.RATER},
    UiAction.RUNS_REFRESH: {Role.ADMIN},
    UiAction.REGISTRY_ALIAS: {Role.ADMIN},
}


def test_policy_matrix_is_the_hand_written_one():
    assert set(UI_POLICY) == set(UiAction), "every UI action is listed in UI_POLICY"
    for action, roles in EXPECTED.items():
        assert set(UI_POLICY[action]) == roles, action
    assert all(Role.CLIENT not in roles for roles in UI_POLICY.values())


@pytest.fixture
def env(sqlite_url):
    keys = make_keys(sqlite_url)
    app = create_app(sqlite_url, scan_on_start=False)
    with TestClient(app, base_url="http://localhost") as c:
        yield c, keys, app


def _login(c: TestClient, key: str):
    return c.post("/login", data={"key": key, "next": "/"}, follow_redirects=False)


def test_anonymous_is_sent_to_login_with_next(env):
    c, _, _ = env
    r = c.get("/?page=2", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F%3Fpage%3D2"


def test_login_sets_a_strict_httponly_cookie_and_refuses_bad_keys(env):
    c, keys, _ = env
    assert _login(c, "llmf_nope_nope").status_code == 401
    assert _login(c, "").status_code == 401
    r = _login(c, keys.client)
    assert r.status_code == 403 and "may not use the UI" in r.text
    r = _login(c, keys.rater)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert c.get("/").status_code == 200


def test_tampered_or_foreign_cookie_is_refused(env):
    c, keys, app = env
    forged = SessionCodec("another-secret-of-enough-length").new(keys.admin)[0]
    c.cookies.set(COOKIE, forged)
    assert c.get("/", follow_redirects=False).status_code == 303
    good = app.state.codec.new(keys.admin)[0]
    c.cookies.set(COOKIE, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert c.get("/", follow_redirects=False).status_code == 303


def test_a_client_key_cookie_is_forbidden(env):
    c, keys, app = env
    c.cookies.set(COOKIE, app.state.codec.new(keys.client)[0])  # as if minted by a bug: the guard still refuses
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 403


def test_revoked_key_ends_the_session(env, sqlite_url):
    from llmops.db import session_factory
    from llmops.feedback.auth import revoke_key

    c, keys, app = env
    assert _login(c, keys.rater).status_code == 303
    with session_factory(sqlite_url)() as s, s.begin():
        revoke_key(s, keys.rater.split("_")[1])
    app.state.verifier.forget()  # as after the cache TTL
    assert c.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_token(env):
    c, keys, app = env
    _login(c, keys.admin)
    assert c.post("/logout", data={"csrf": "wrong"}, follow_redirects=False).status_code == 403
    csrf = app.state.codec.read(c.cookies.get(COOKIE)).csrf
    r = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and COOKIE in r.headers["set-cookie"]


def test_cross_origin_login_post_is_refused(env):
    c, keys, _ = env
    r = c.post("/login", data={"key": keys.admin}, headers={"Origin": "http://evil.example"}, follow_redirects=False)
    assert r.status_code == 403


def test_untrusted_host_and_headers(env):
    c, keys, _ = env
    assert c.get("/login", headers={"Host": "attacker.example"}).status_code == 400
    r = c.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


def test_an_unguarded_route_refuses_to_build(sqlite_url, monkeypatch):
    import llmops.ui.app as ui_app

    make_keys(sqlite_url)
    bad = APIRouter()

    @bad.get("/oops")
    def oops() -> dict:
        return {}

    class Module:
        router, NAV = bad, None

    monkeypatch.setattr(ui_app, "load_pages", lambda: [Module])
    with pytest.raises(RuntimeError, match="/oops declares no guard"):
        create_app(sqlite_url, scan_on_start=False)


@pytest.mark.parametrize("target,expected", [("/runs?x=1", "/runs?x=1"), ("//evil.example", "/"),
                                             ("https://evil.example/", "/"), ("/\\evil", "/"), (None, "/")])
def test_next_is_always_local(target, expected):
    assert safe_next(target) == expected


def test_bad_form_is_a_400_not_a_500(env):
    c, keys, _ = env
    r = c.post("/login", content=b"\xff\xfe", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    r = c.post("/login", json={"key": keys.admin})
    assert r.status_code == 400
