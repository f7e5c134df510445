"""The console in a real headless Chromium (F13): log in, add a connector, send it a
webhook and watch it arrive in the log, open it; and the session's rules (HttpOnly,
SameSite=Strict cookie; CSRF on every change; the bearer token still works)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from libs.infra.settings import Settings
from tests.support.browser import Page, log_in
from tests.support.system import InProcessSystem

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs"


async def test_log_in_add_a_connector_and_watch_its_events_arrive(
    system: InProcessSystem, page: Page, settings: Settings, session: aiohttp.ClientSession
) -> None:
    await page.goto("/")
    await page.fill("#token", "not-the-token")
    await page.click("form button[type=submit]")
    await page.wait_text("form .problem", "not the admin token")

    await page.fill("#token", settings.admin_token)
    await page.click("form button[type=submit]")
    await page.fill("#new-connector-name", "shop orders")
    await page.click("form[aria-label='Add a connector'] button")
    url_box = await page.find("#connector-url")
    url = await page.js("return arguments[0].value", url_box)
    assert "/c/" in url
    token = url.rsplit("/c/", 1)[1]
    connector = await page.js("return location.hash")
    connector_id = connector.rsplit("/", 1)[1]
    await system.knows({"id": connector_id, "url": url, "version": 1})

    # A webhook sent now appears in the log beside the settings, without a reload.
    body = b'{"customer": {"name": "Ann"}, "total": 42.5}'
    ingest = f"{system.apps['ingest'].url}/c/{token}?value=day1"
    async with session.post(ingest, data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
    row = await page.wait_text("#event-log tbody tr", "succeeded")
    await page.js("arguments[0].click()", row)
    raw = await page.find("#raw-body")
    assert raw.text == body.decode()
    await page.wait_text("#parsed-body", '"total": 42.5')
    await page.wait_text("main h1", "Event")

    # Back on the list: the counts.
    await page.goto("/console/#/connectors")
    counted = await page.wait_text("#connectors tbody tr", "shop orders")
    cells = [c.text for c in counted.find_elements("css selector", "td")]
    assert cells[1:4] == ["1", "1", "0"]
    errors = await page.console_errors()
    # Answers the page expects (401 before login, 404 before a structure is learned)
    # are logged by the browser as failed loads; script errors are what must not happen.
    assert [e for e in errors if "Failed to load resource" not in e] == [], errors


async def test_the_session_cookie_is_httponly_strict_and_changes_need_csrf(
    system: InProcessSystem, page: Page, settings: Settings, session: aiohttp.ClientSession
) -> None:
    await log_in(page, settings.admin_token)
    cookies = await page._run(page.driver.get_cookies)
    [cookie] = [c for c in cookies if c["name"] == "hookline_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert await page.js("return document.cookie") == ""  # no script can read it

    base = system.apps["config"].url
    jar = {"hookline_session": cookie["value"]}
    async with aiohttp.ClientSession(cookies=jar) as browser_like:
        async with browser_like.get(base + "/api/v1/connectors") as r:
            assert r.status == 200  # reading with the session alone
        async with browser_like.post(base + "/api/v1/connectors", json={"name": "x"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
        csrf = await page.js("return sessionStorage.getItem('hookline.csrf')")
        headers = {"X-CSRF-Token": csrf}
        async with browser_like.post(
            base + "/api/v1/connectors", json={"name": "x"}, headers=headers
        ) as r:
            assert r.status == 201
    forged = {"hookline_session": cookie["value"][:-4] + "0000"}
    async with (
        aiohttp.ClientSession(cookies=forged) as forger,
        forger.get(base + "/api/v1/connectors") as r,
    ):
        assert r.status == 401
    # The bearer token keeps working for curl and the CLI.
    bearer = {"Authorization": f"Bearer {settings.admin_token}"}
    async with session.get(base + "/api/v1/connectors", headers=bearer) as r:
        assert r.status == 200

    await page.click("#logout")
    await page.find("#token")
    cookies = await page._run(page.driver.get_cookies)
    assert not [c for c in cookies if c["name"] == "hookline_session"]


async def test_the_cookie_is_secure_when_the_browser_came_over_tls(
    system: InProcessSystem, settings: Settings
) -> None:
    base = system.apps["config"].url
    async with aiohttp.ClientSession() as client:
        for proto, secure in (("https", True), (None, False)):
            headers = {"X-Forwarded-Proto": proto} if proto else {}
            async with client.post(
                base + "/console/login", json={"token": settings.admin_token}, headers=headers
            ) as r:
                assert r.status == 200
                cookie = r.cookies["hookline_session"]
                assert bool(cookie["secure"]) is secure and cookie["httponly"]
                assert cookie["samesite"] == "Strict"


async def test_the_console_pages_carry_a_strict_content_security_policy(
    system: InProcessSystem, session: aiohttp.ClientSession
) -> None:
    base = system.apps["config"].url
    async with session.get(base + "/", allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (302, "/console/")
    for path in ("/console/", "/console/assets/js/app.js", "/console/assets/app.css"):
        async with session.get(base + path) as r:
            assert r.status == 200, path
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY"
    for path in ("/console/assets/../app.py", "/console/assets/%2e%2e/console.py"):
        async with session.get(base + path) as r:
            assert r.status == 404, path
