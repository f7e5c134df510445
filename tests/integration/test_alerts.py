"""Alerts to the operator (F14) through the real services: dead-lettered events
notify by email through a real SMTP server (aiosmtpd), a failure ratio over a window
notifies by HTTP a real receiver; at most one notification per window, and a send
that fails is tried again by the window's next verdict."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from libs.infra.mongo.store import Store
from libs.runtime import worker
from tests.support.fixtures import wait_for
from tests.support.smtp import SmtpRecorder, smtp_server
from tests.support.system import Api, InProcessSystem, Receiver, forward_n

pytestmark = pytest.mark.integration
WEEK = 7 * 86400.0  # one window for the whole test (windows are aligned to the epoch)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpRecorder]:
    async with smtp_server() as server:
        yield server


async def _metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(url + "/metrics") as r:
        text = await r.text()
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M))


async def _channel(system: InProcessSystem, api: Api, channel: dict[str, Any]) -> None:
    await api.call("POST", "/api/v1/channels", channel, expect=201)
    channels = system.apps["executor"].app[worker.BACKBONE].channels
    await wait_for(lambda: channels.get(channel["id"]), what="the executor to know it")


async def _window(store: Store, connector_id: str) -> dict[str, Any] | None:
    return await store.alert_windows.find_one({"_id": {"$regex": f"^{connector_id}:"}})


async def _post(session: aiohttp.ClientSession, url: str, n: int) -> str:
    async with session.post(url, json={"n": n}) as r:
        assert r.status == 200, await r.text()
        event_id: str = (await r.json())["event_id"]
        return event_id


async def test_dead_letters_alert_by_email_once_per_window_and_a_failed_send_is_retried(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    receiver: Receiver,
    smtp: SmtpRecorder,
    store: Store,
) -> None:
    await _channel(
        system,
        api,
        {
            "type": "email", "id": "ops-mail", "host": smtp.host, "port": smtp.port,
            "from_address": "Hookline <alerts@example.com>", "starttls": False,
            "allow_private": True,
        },
    )  # fmt: skip
    config = forward_n(receiver.url + "/x") | {
        "alerts": {"channel": "ops-mail", "to": "ops@example.com", "window_s": WEEK}
    }
    connector, url = await system.ready_connector(api, "orders-sync", config)
    cid = connector["id"]
    executor = system.apps["executor"].url
    receiver.statuses = [500] * 100  # every call fails: each event is dead-lettered
    smtp.reject_next(1, 451)  # the first notification is refused (temporarily)

    first = await _post(session, url, 1)
    failed = 'hookline_executor_alerts_total{outcome="failed",reason="dead_lettered"}'
    await wait_for(lambda: _metric(session, executor, failed), what="the refused send")
    assert smtp.messages == []
    window = await _window(store, cid)
    assert window is not None and window["dead_lettered"] == 1
    assert window["alerted"] is None  # given back: the next verdict tries again

    second = await _post(session, url, 2)
    mails = await smtp.wait_for(1, timeout_s=20)
    for n in (3, 4):
        await _post(session, url, n)

    async def counted() -> dict[str, Any] | None:
        found = await _window(store, cid)
        return found if found and found["dead_lettered"] == 4 else None

    window = await wait_for(counted, what="every dead letter counted", timeout_s=30)
    assert window["alerted"] == "dead_lettered"
    sent = 'hookline_executor_alerts_total{outcome="sent",reason="dead_lettered"}'
    assert await _metric(session, executor, sent) == 1
    assert len(smtp.messages) == 1  # once per window, however many dead letters follow
    mail = mails[0].message
    assert mails[0].rcpt_tos == ["ops@example.com"]
    assert "orders-sync" in mail["Subject"] and "dead-lettered" in mail["Subject"]
    text = mail.get_content()
    assert cid in text and second in text and first not in text
    assert mail["Message-ID"].strip().startswith("<alert.")


async def test_a_failure_ratio_alerts_by_http_when_the_window_has_enough_events(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    receiver: Receiver,
    store: Store,
) -> None:
    await _channel(
        system,
        api,
        {
            "type": "http", "id": "ops-hook", "base_url": receiver.url + "/ops",
            "headers": {"Authorization": "Bearer ops-secret"}, "allow_private": True,
        },
    )  # fmt: skip
    config = forward_n(receiver.url + "/x") | {
        "alerts": {
            "channel": "ops-hook", "path": "alerts", "on_dead_letter": False,
            "failure_ratio": 0.5, "min_events": 4, "window_s": WEEK,
        }
    }  # fmt: skip
    connector, url = await system.ready_connector(api, "billing", config)
    cid = connector["id"]

    def alerts() -> list[dict[str, Any]]:
        return [c for c in receiver.calls if c["path"].startswith("/ops")]

    async def counted(total: int) -> dict[str, Any] | None:
        found = await _window(store, cid)
        return found if found and found["total"] == total else None

    # 200, 404, 404: two of three failed, but under min_events: no alert.
    receiver.statuses = [200, 404, 404]
    for n in range(3):
        await _post(session, url, n)
        await wait_for(lambda t=n + 1: counted(t), what="the verdict counted")
    window = await _window(store, cid)
    assert window is not None and (window["failed"], window.get("alerted")) == (2, None)
    assert alerts() == []

    receiver.statuses = [200]  # 2 of 4 failed: the ratio (0.5) is reached
    await _post(session, url, 3)
    await wait_for(alerts, what="the alert", timeout_s=20)
    receiver.statuses = [404, 404]
    for n in (4, 5):
        await _post(session, url, n)
    await wait_for(lambda: counted(6), what="every verdict counted")
    calls = alerts()
    assert len(calls) == 1, calls
    call = calls[0]
    assert call["path"] == "/ops/alerts" and call["method"] == "POST"
    assert call["headers"]["Authorization"] == "Bearer ops-secret"
    assert call["headers"]["Idempotency-Key"].startswith(f"alert:{cid}:")
    note = json.loads(call["body"])
    assert note["reason"] == "failure_ratio" and note["connector_id"] == cid
    assert (note["total"], note["failed"], note["failure_ratio"]) == (4, 2, 0.5)
    assert note["connector_name"] == "billing"


async def test_an_alert_must_name_a_known_channel(system: InProcessSystem, api: Api) -> None:
    connector = await api.create_connector("alerting")
    got = await api.call(
        "PUT",
        f"/api/v1/connectors/{connector['id']}",
        {"version": connector["version"], "config": {"alerts": {"channel": "nope"}}},
        expect=422,
    )
    assert "$.alerts.channel" in str(got)
    got = await api.call(
        "PUT",
        f"/api/v1/connectors/{connector['id']}",
        {"version": connector["version"], "config": {"alerts": {"channel": "x", "window_s": 1}}},
        expect=422,
    )
    assert "window_s" in str(got)
    await api.call(
        "POST",
        "/api/v1/channels",
        {"type": "email", "id": "mail", "host": "smtp.example.com", "from_address": "a@b.c"},
        expect=201,
    )
    got = await api.call(
        "PUT",
        f"/api/v1/connectors/{connector['id']}",
        {"version": connector["version"], "config": {"alerts": {"channel": "mail"}}},
        expect=422,
    )
    assert "$.alerts.to" in str(got)
