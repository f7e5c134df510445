"""The console's day-2 operations in a real headless Chromium: pause and resume from the
connector page (held events counted, then run), the log searched by value on the
server (a refused search says why), a bulk replay of the failed events (counted,
started, followed to done, its replays in the log), and retention and an alert saved
in the settings (an event then shows until when it is kept; a dead-lettered one says
so, and the alert's email is sent)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from libs.infra.nats.registry import Registry
from libs.infra.settings import Settings
from tests.support.browser import Page, log_in
from tests.support.fixtures import Running, serve, wait_for
from tests.support.smtp import SmtpRecorder
from tests.support.system import Api, InProcessSystem, Receiver, forward_n

pytestmark = pytest.mark.e2e
EVENTS = 52  # more than a page of the connector page's log (50)
ROWS = """
return [...document.querySelectorAll('#event-log tbody tr')].map((r) => ({
  id: r.dataset.event, status: r.dataset.status, replay_of: r.dataset.replayOf || null,
  text: r.textContent}));
"""


class Verdicts:
    """A receiver that answers 404 (failed at once) for the events whose n it is told."""

    def __init__(self) -> None:
        self.failing: set[int] = set()
        self.calls: list[int] = []
        self.running: Running | None = None

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    async def handle(self, request: web.Request) -> web.Response:
        n = int(await request.text())
        self.calls.append(n)
        return web.json_response({}, status=404 if n in self.failing else 200)


@pytest.fixture
async def verdicts() -> AsyncIterator[Verdicts]:
    receiver = Verdicts()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    receiver.running = await serve(app)
    yield receiver
    await receiver.running.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


def js_errors(errors: list[str]) -> list[str]:
    """The page's own errors: a 400/404/422 answer is logged by the browser too."""
    return [e for e in errors if "Failed to load resource" not in e]


async def rows(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.js(ROWS)
    return found


async def wait_rows(page: Page, what: str, ok: Any) -> list[dict[str, Any]]:
    """The log's rows once ``ok(rows)`` holds."""

    def probe() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = page.driver.execute_script(ROWS)
        return found if ok(found) else None

    return await page.wait(probe, what)


async def text_of(page: Page, css: str) -> str:
    found: str = await page.js("return document.querySelector(arguments[0]).textContent", css)
    return found


async def registries_see_paused(system: InProcessSystem, connector_id: str, paused: bool) -> None:
    """Every service's registry has the connector's ``paused`` (the KV watch is async)."""

    def ready() -> bool:
        for running in system.apps.values():
            for value in running.app.values():
                registry = (
                    value if isinstance(value, Registry) else getattr(value, "registry", None)
                )
                if isinstance(registry, Registry):
                    snap = registry.by_id(connector_id)
                    if snap is None or snap.paused is not paused:
                        return False
        return True

    await wait_for(ready, what=f"registries to see paused={paused}")


async def test_pause_holds_the_steps_and_resume_runs_them(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    connector, url = await system.ready_connector(api, "orders", forward_n(receiver.url))
    cid = connector["id"]
    await log_in(page, settings.admin_token)
    await page.goto(f"/console/#/connectors/{cid}")
    await page.wait_text("#pause-toggle", "Pause")
    assert await page.find_all("#paused-badge") == []
    assert "Running" in await text_of(page, "#pause-note")

    await page.click("#pause-toggle")
    await page.wait_text("h1 #paused-badge", "Paused")
    await page.wait_text("#pause-toggle", "Resume")
    note = await text_of(page, "#pause-note")
    assert "still stored and answered" in note and "steps wait" in note
    shown = await api.call("GET", f"/api/v1/connectors/{cid}", expect=200)
    assert shown["paused"] is True
    await registries_see_paused(system, cid, True)

    # While paused: the event is stored and answered, its step waits (held).
    async with session.post(url, json={"n": 7}) as r:
        assert r.status == 200
    await page.wait_text("#pause-note", "1 event is held")
    await page.click("#link-stats")
    held = await page.wait_text("#stats-now [data-value=held]", "1")
    assert held.text == "1"
    await page.wait_text("#stats-state", "Paused")
    assert receiver.calls == []
    stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats", expect=200)
    assert (stats["paused"], stats["held"]) == (True, 1)

    # Resume: the held event runs, the page says so.
    await page.click("#back-to-connector")
    await page.click("#pause-toggle")
    await page.wait_text("#pause-toggle", "Pause")
    await page.wait_text("#pause-note", "Running")
    assert await page.find_all("#paused-badge") == []
    shown = await api.call("GET", f"/api/v1/connectors/{cid}", expect=200)
    assert shown["paused"] is False
    await wait_for(lambda: len(receiver.calls) == 1, what="the held event's step to run")
    assert receiver.calls[0]["body"] == "7"
    await wait_rows(
        page, "the event to succeed", lambda rs: [r["status"] for r in rs] == ["succeeded"]
    )
    stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats", expect=200)
    assert (stats["paused"], stats["held"]) == (False, 0)
    assert js_errors(await page.console_errors()) == []


async def test_search_the_log_by_value_and_bulk_replay_the_failed_events(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
    verdicts: Verdicts,
) -> None:
    verdicts.failing = {0, 3}
    connector, url = await system.ready_connector(api, "leads", forward_n(verdicts.url))
    cid = connector["id"]
    ids = []
    for n in range(EVENTS):
        body = {"n": n, "customer": {"email": f"c{n}@example.com"}}
        async with session.post(url, json=body) as r:
            assert r.status == 200
            ids.append((await r.json())["event_id"])
    failed = {ids[n] for n in verdicts.failing}

    async def verdicts_in() -> dict[str, Any] | None:
        stats: dict[str, Any] = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return stats if stats["succeeded"] + stats["failed"] == len(ids) else None

    stats = await wait_for(verdicts_in, what="every verdict")
    assert stats["failed"] == len(failed)

    await log_in(page, settings.admin_token)
    await page.goto(f"/console/#/connectors/{cid}")  # its log shows 50 a page

    # The newest page, then Older (the API's cursor), then back to the newest.
    newest = await wait_rows(page, "a full first page", lambda rs: len(rs) == 50)
    assert [r["id"] for r in newest] == ids[:1:-1]
    await page.click("#log-older")
    oldest = await wait_rows(page, "the older page", lambda rs: len(rs) == 2)
    assert [r["id"] for r in oldest] == [ids[1], ids[0]]
    assert "page 2" in await text_of(page, "#log-note")
    assert await page.js("return document.querySelector('#log-older').disabled") is True
    await page.click("#log-newest")
    await wait_rows(page, "the first page again", lambda rs: len(rs) == 50)

    # A body value: only the matching event is listed.
    await page.fill(".log-condition", "body.customer.email=c4@example.com")
    await page.click("#log-search-button")
    [row] = await wait_rows(page, "one matching row", lambda rs: len(rs) == 1)
    assert row["id"] == ids[4]
    assert "1 matching" in await text_of(page, "#log-note")

    # A condition the API refuses: its message, and no rows.
    await page.fill(".log-condition", "body.customer[=x")
    await page.click("#log-search-button")
    await page.wait_text("#log-problem", "invalid attribute path")
    assert await rows(page) == []
    # One the page refuses before asking: not a searchable field.
    await page.fill(".log-condition", "customer.email=x")
    await page.click("#log-search-button")
    await page.wait_text("#log-problem", "search by body.<path>")

    # A time range (the browser's local time, sent as ISO): nothing before 2000.
    await page.click("#log-clear")
    await wait_rows(page, "the first page again", lambda rs: len(rs) == 50)
    set_value = "document.querySelector(arguments[0]).value = arguments[1]"
    await page.js(set_value, "#log-before", "2000-01-01T00:00:00")
    await page.click("#log-search-button")
    await page.wait_text("#log-note", "No event matches")
    await page.click("#log-clear")

    # Bulk replay of the log's selection: the failed events, counted, then replayed.
    await page.select("#log-status", "failed")
    listed = await wait_rows(page, "the failed events", lambda rs: len(rs) == len(failed))
    assert {r["id"] for r in listed} == failed
    await page.click("#bulk-count")
    plan = await page.wait_text("#bulk-plan", "events match")
    assert plan.text == f"{stats['failed']} events match"
    verdicts.failing = set()  # the receiver is fixed: the replays succeed
    await page.click_text("#bulk-start", f"Replay {len(failed)} events")
    await page.accept_dialog("Replay")
    await page.wait_text("#bulk-progress-text", f"{len(failed)} of {len(failed)} replayed · done")
    await page.wait_text(
        "#bulk-job-list tbody tr[data-state=done]", f"{len(failed)} of {len(failed)}"
    )

    await page.select("#log-status", "")
    replays = await wait_rows(
        page,
        "the replays in the log, succeeded",
        lambda rs: (
            sum(1 for r in rs if r["replay_of"] and r["status"] == "succeeded") == len(failed)
        ),
    )
    replayed = [r for r in replays if r["replay_of"]]
    assert {r["replay_of"] for r in replayed} == failed
    assert all("replay of" in r["text"] for r in replayed)
    log = await api.call("GET", f"/api/v1/connectors/{cid}/events?limit=50", expect=200)
    assert {e["replay_of"] for e in log["items"] if e["replay_of"]} == failed
    assert sorted(verdicts.calls[len(ids) :]) == [0, 3]  # the replays ran the failed ones
    assert js_errors(await page.console_errors()) == []


async def test_retention_and_an_alert_are_saved_and_shown_on_the_event(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
    receiver: Receiver,
    smtp: SmtpRecorder,
) -> None:
    await api.call(
        "POST", "/api/v1/channels",
        {"type": "email", "id": "ops-mail", "host": smtp.host, "port": smtp.port,
         "from_address": "alerts@hookline.test", "starttls": False, "allow_private": True},
        expect=201,
    )  # fmt: skip
    await api.call(
        "POST", "/api/v1/channels",
        {"type": "http", "id": "ops-hook", "base_url": "https://ops.example.com"},
        expect=201,
    )  # fmt: skip
    await api.call(
        "POST", "/api/v1/channels",
        {"type": "whatsapp", "id": "wa", "phone_number_id": "1", "access_token": "t"},
        expect=201,
    )  # fmt: skip
    connector, url = await system.ready_connector(api, "billing", forward_n(receiver.url))
    cid = connector["id"]
    await log_in(page, settings.admin_token)
    await page.goto(f"/console/#/connectors/{cid}")
    await page.click("#tab-operations")
    options = await page.js(
        "return [...document.querySelectorAll('#alerts-channel option')].map((o) => o.value)"
    )
    assert sorted(options) == ["", "ops-hook", "ops-mail"]  # email and HTTP channels only
    shown = "return !document.querySelector(arguments[0]).closest('.field').hidden"
    await page.select("#alerts-channel", "ops-hook")
    assert (await page.js(shown, "#alerts-path"), await page.js(shown, "#alerts-to")) == (
        True,
        False,
    )
    await page.select("#alerts-channel", "ops-mail")
    assert (await page.js(shown, "#alerts-path"), await page.js(shown, "#alerts-to")) == (
        False,
        True,
    )

    # Out of bounds: the API's 422 at its field.
    await page.fill("#retention-days", "5000")
    await page.fill("#alerts-to", "ops@example.com")
    await page.click("#save-operations")
    await page.wait_text('[data-path="$.retention_days"] + .problem', "3650")

    await page.fill("#retention-days", "7")
    await page.fill("#alerts-failure-ratio", "0.5")
    await page.fill("#alerts-min-events", "4")
    await page.fill("#alerts-window", "600")
    await page.click("#save-operations")
    await page.wait_text("#toasts .toast", f"Saved version {connector['version'] + 1}")
    saved = await api.call("GET", f"/api/v1/connectors/{cid}", expect=200)
    assert saved["config"]["retention_days"] == 7
    assert saved["config"]["alerts"] == {
        "channel": "ops-mail",
        "to": "ops@example.com",
        "path": "",
        "on_dead_letter": True,
        "failure_ratio": 0.5,
        "min_events": 4,
        "window_s": 600.0,
    }
    await system.knows(saved)

    # An event that fails every attempt: dead-lettered, kept 7 days, the alert mailed.
    receiver.statuses = [500, 500, 500]
    async with session.post(url, json={"n": 1}) as r:
        assert r.status == 200
        event_id = (await r.json())["event_id"]
    await page.goto(f"/console/#/connectors/{cid}/events/{event_id}")

    async def dead_lettered() -> dict[str, Any] | None:
        got: dict[str, Any] | None = await api.found(f"/api/v1/connectors/{cid}/events/{event_id}")
        return got if got is not None and got["dead_lettered"] else None

    detail = await wait_for(dead_lettered, what="the event to be dead-lettered")
    kept = datetime.fromisoformat(detail["expire_at"]) - datetime.fromisoformat(
        detail["received_at"]
    )
    assert abs(kept - timedelta(days=7)) < timedelta(minutes=1)
    await page._run(page.driver.refresh)
    await page.wait_text("#event-dead-lettered", "dead-lettered")
    await page.wait_text("#event-expires", "kept until")
    wanted = await page.js(
        "return ' · kept until ' + new Date(arguments[0]).toLocaleString()", detail["expire_at"]
    )
    assert await text_of(page, "#event-expires") == wanted
    [mail] = await smtp.wait_for(1, timeout_s=15)
    assert mail.rcpt_tos == ["ops@example.com"]
    assert js_errors(await page.console_errors()) == []
