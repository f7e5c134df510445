"""Retention (F14) through the real services: every log entry (with its raw bytes) and
every step record says when it goes, from HOOKLINE_LOG_RETENTION_DAYS or the
connector's own ``retention_days``, and MongoDB's TTL indexes remove it then.

The removal itself waits for the database's TTL monitor (up to a minute): that test
runs with ``HOOKLINE_TTL_TEST=1``."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from libs.infra.mongo.store import Store
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem, Receiver, forward_n

pytestmark = pytest.mark.integration


async def _one_event(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, url: str, cid: str
) -> dict[str, Any]:
    async with session.post(url, json={"n": 1}) as r:
        assert r.status == 200, await r.text()
        event_id = (await r.json())["event_id"]

    async def done() -> dict[str, Any] | None:
        found = await api.found(f"/api/v1/connectors/{cid}/events/{event_id}")
        return found if found and found["status"] == "succeeded" else None

    detail: dict[str, Any] = await wait_for(done, what="the event's verdict")
    return detail


async def test_entries_and_step_records_expire_after_the_retention(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    receiver: Receiver,
    store: Store,
) -> None:
    default_days = system.settings.log_retention_days
    for days in (None, 2.5):
        config = forward_n(receiver.url + "/x") | {"retention_days": days}
        connector, url = await system.ready_connector(api, f"kept-{days}", config)
        detail = await _one_event(system, api, session, url, connector["id"])
        entry = await store.events.find_one({"_id": detail["event_id"]})
        assert entry is not None and entry["raw"] is not None  # the raw bytes go with it
        kept = timedelta(days=days or default_days)
        assert entry["expire_at"] - entry["received_at"] == kept
        assert detail["expire_at"] == entry["expire_at"].isoformat()
        step = await store.step_runs.find_one({"event_id": detail["event_id"]})
        assert step is not None and step["expire_at"] == entry["expire_at"]
    for collection in (store.events, store.step_runs, store.bulk_replays, store.alert_windows):
        indexes = await collection.index_information()
        ttl = [i for i in indexes.values() if i.get("key") == [("expire_at", 1)]]
        assert ttl and ttl[0]["expireAfterSeconds"] == 0, collection.name


@pytest.mark.skipif(not os.environ.get("HOOKLINE_TTL_TEST"), reason="HOOKLINE_TTL_TEST=1")
async def test_the_ttl_monitor_removes_an_expired_entry(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    receiver: Receiver,
    store: Store,
) -> None:
    config = forward_n(receiver.url + "/x") | {"retention_days": 1 / 86400}  # one second
    connector, url = await system.ready_connector(api, "brief", config)
    detail = await _one_event(system, api, session, url, connector["id"])

    async def gone() -> bool:
        return await store.events.find_one({"_id": detail["event_id"]}) is None

    await wait_for(gone, what="the TTL monitor to remove the entry", timeout_s=150)
    assert await store.step_runs.find_one({"event_id": detail["event_id"]}) is None
