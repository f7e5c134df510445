"""The console's main pages at 1280 px and at a phone's width, in a real Chromium: each
renders without a script error and without a page wider than the screen.

With ``HOOKLINE_SCREENSHOTS=1`` (``make screenshots``) the pictures are also written
to ``docs/console/`` for the README."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.infra.settings import Settings
from tests.support.browser import Page, chromium
from tests.support.fixtures import wait_for
from tests.support.steps import day_branch
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
WRITE = os.environ.get("HOOKLINE_SCREENSHOTS") == "1"
PHONE = (390, 844)
# Every visible form control has a name a screen reader can say: a <label for>, a wrapping
# <label>, aria-label or aria-labelledby (buttons: their text).
UNLABELLED = """
return [...document.querySelectorAll('main input, main select, main textarea')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML.slice(0, 120));
"""


async def _seed(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> dict[str, str]:
    """A connector with the drip campaign's three branches and a few events."""
    await api.call(
        "POST",
        "/api/v1/channels",
        {"type": "http", "id": "crm-hook", "base_url": "https://crm.example.com"},
        expect=201,
    )
    steps = [
        day_branch(
            f"day{n}",
            f"day{n}",
            f"only-day{n}",
            {
                "type": "http",
                "id": f"send-day{n}",
                "method": "GET",
                "url": f"{system.apps['config'].url}/healthz",
            },
        )
        for n in (1, 2, 3)
    ]
    connector, url = await system.ready_connector(api, "Drip campaign", {"steps": steps})
    for n in (1, 2, 3):
        body = {"customer": {"name": "Ann", "email": "ann@example.com"}, "order": 1000 + n}
        async with session.post(f"{url}?value=day{n}", json=body) as r:
            assert r.status == 200
    await system.ready_connector(api, "Shop orders")

    async def logged() -> dict[str, Any] | None:
        found = await api.call("GET", f"/api/v1/connectors/{connector['id']}/events?limit=3")
        done = len(found["items"]) == 3 and all(e["status"] != "received" for e in found["items"])
        return found if done else None

    events = await wait_for(logged, what="the three events' verdicts")
    return {
        "connectors": "#/connectors",
        "connector": f"#/connectors/{connector['id']}",
        "event": f"#/connectors/{connector['id']}/events/{events['items'][0]['event_id']}",
        "stats": f"#/connectors/{connector['id']}/stats",
        "versions": f"#/connectors/{connector['id']}/versions",
        "channels": "#/channels",
    }


async def _shoot(page: Page, pages: dict[str, str], suffix: str) -> None:
    for name, hash_ in pages.items():
        await page.goto(f"/console/{hash_}")
        await page.find("main h1")
        await page.wait(
            lambda: (
                page.driver.execute_script(
                    "return !document.querySelector('main').textContent.startsWith('Loading')"
                )
                or None
            ),
            f"{name} to render",
        )
        overflow = await page.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name}{suffix}: the page is {overflow}px wider than the window"
        unlabelled = await page.js(UNLABELLED)
        assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
        if WRITE:
            await page.screenshot(DOCS / f"{name}{suffix}.png")
    errors = [e for e in await page.console_errors() if "status of 4" not in e]
    assert errors == [], json.dumps(errors, indent=1)


async def test_main_pages_render_at_desktop_and_phone_widths(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    pages = await _seed(system, api, session)
    async with chromium(system.apps["config"].url) as page:
        await page.goto("/console/")
        await page.fill("#token", settings.admin_token)
        await page.click("form button[type=submit]")
        await page.find("#new-connector-name")
        await _shoot(page, pages, "")
        await page.resize(*PHONE)
        await _shoot(page, {k: pages[k] for k in ("connectors", "connector", "event")}, "-phone")
    if WRITE:
        assert all((DOCS / f"{name}.png").stat().st_size > 10_000 for name in pages)
