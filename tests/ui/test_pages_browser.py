"""Every UI page in headless Chromium: loads with no console errors or foreign requests; roles hold."""

from __future__ import annotations

import pytest

from .helpers import assert_page_clean, login

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(ui_env, ui_server_factory):
    return ui_server_factory(ui_env["url"], [ui_env["runs"]])


def test_login_page_and_home_are_clean(browser, server, keys):
    page = browser.new_page()
    assert_page_clean(page, server.base + "/login")
    login(page, server.base, keys.rater)
    assert_page_clean(page, server.base + "/")
    assert "rita · rater" in page.inner_text("header")
    page.click("header form[action='/logout'] button")
    page.wait_for_url(server.base + "/login")
    page.close()
