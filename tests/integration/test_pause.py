"""Pause and resume (F14) through the real services: a paused connector stores, answers
and maps its events but runs no step; they wait through restarts of every service and
are put back in arrival order on resume, each run and logged once."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import msgspec
import nats
import pytest

from libs.infra.nats import subjects
from libs.runtime import worker
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem, Receiver, forward_n

pytestmark = pytest.mark.integration
EVENTS = 30


def _executor_sees(system: InProcessSystem, connector_id: str, paused: bool) -> bool:
    snap = system.apps["executor"].app[worker.BACKBONE].registry.by_id(connector_id)
    return snap is not None and snap.paused is paused


async def _metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(url + "/metrics") as r:
        text = await r.text()
    values = [float(v) for v in re.findall(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)]
    return sum(values)


async def test_held_events_survive_restarts_and_run_once_in_arrival_order_on_resume(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    connector, url = await system.ready_connector(api, "paused", forward_n(receiver.url + "/x"))
    cid = connector["id"]
    paused = await api.call("POST", f"/api/v1/connectors/{cid}/pause", expect=200)
    assert paused["paused"] is True
    assert (await api.call("GET", f"/api/v1/connectors/{cid}"))["paused"] is True
    await wait_for(lambda: _executor_sees(system, cid, True), what="the executor to see pause")

    ids = []
    for n in range(EVENTS):
        async with session.post(url, json={"n": n, "order": {"id": 2**63 + n}}) as r:
            assert r.status == 200, await r.text()
            ids.append((await r.json())["event_id"])

    async def held() -> dict[str, Any] | None:
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        # Logged as received once the log's grace period for a verdict is over.
        return stats if stats["held"] == EVENTS and stats["received"] == EVENTS else None

    stats = await wait_for(held, what="every event to be held and logged as received")
    assert stats["paused"] is True
    assert stats["succeeded"] == 0
    assert receiver.calls == []  # no step ran
    # The mapper still mapped: the structure was learned from the first event.
    assert await api.found(f"/api/v1/connectors/{cid}/structure") is not None
    held_metric = await _metric(
        session, system.apps["executor"].url, 'hookline_executor_messages_total{outcome="held"}'
    )
    assert held_metric == EVENTS

    # Every service restarts while the events wait.
    for name in ("executor", "mapper", "ingest", "config"):
        await system.restart(name)
    api.base = system.apps["config"].url
    await wait_for(lambda: _executor_sees(system, cid, True), what="the executor to see pause")
    assert (await api.call("GET", f"/api/v1/connectors/{cid}/stats"))["held"] == EVENTS
    gauge = f'hookline_config_held_events{{connector="{cid}"}}'

    async def gauge_shows() -> bool:
        return await _metric(session, system.apps["config"].url, gauge) == EVENTS

    await wait_for(gauge_shows, what="the held gauge")
    assert receiver.calls == []

    # Put back in arrival order: watch the connector's mapped subject.
    nc = await nats.connect(system.settings.nats_url)
    order: list[int] = []

    async def collect(msg: Any) -> None:
        order.append(msgspec.json.decode(msg.data)["received"]["body"]["n"])

    sub = await nc.subscribe(subjects.mapped(system.settings.prefix, cid), cb=collect)
    try:
        resumed = await api.call("POST", f"/api/v1/connectors/{cid}/resume", expect=200)
        assert resumed["paused"] is False
        await wait_for(lambda: len(receiver.calls) >= EVENTS, what="the held events to run")
        assert order == list(range(EVENTS))
    finally:
        await sub.unsubscribe()
        await nc.close()

    async def all_succeeded() -> dict[str, Any] | None:
        s = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return s if s["succeeded"] == EVENTS and s["held"] == 0 else None

    stats = await wait_for(all_succeeded, what="every event to be logged succeeded")
    assert stats["paused"] is False and stats["failed"] == 0
    assert sorted(int(c["body"]) for c in receiver.calls) == list(range(EVENTS))  # once each
    page = await api.call("GET", f"/api/v1/connectors/{cid}/events?limit=100")
    assert sorted(i["event_id"] for i in page["items"]) == sorted(ids)
    assert {i["status"] for i in page["items"]} == {"succeeded"}
    released = await _metric(
        session,
        system.apps["config"].url,
        f'hookline_config_released_events_total{{connector="{cid}"}}',
    )
    assert released == EVENTS

    # After resume, new events run at once.
    async with session.post(system.ingest_url(connector), json={"n": EVENTS}) as r:
        assert r.status == 200
    await wait_for(lambda: len(receiver.calls) == EVENTS + 1, what="a new event to run")


async def test_pause_and_resume_are_idempotent_and_404_for_unknown(
    system: InProcessSystem, api: Api
) -> None:
    connector = await api.create_connector("twice")
    path = f"/api/v1/connectors/{connector['id']}"
    for _ in range(2):
        assert (await api.call("POST", path + "/pause", expect=200))["paused"] is True
    for _ in range(2):
        assert (await api.call("POST", path + "/resume", expect=200))["paused"] is False
    # Pausing is not a configuration change: no new version.
    assert (await api.call("GET", path))["version"] == connector["version"]
    missing = await api.call("POST", "/api/v1/connectors/nope/pause", expect=404)
    assert missing["error"]["code"] == "not_found"
