"""Bulk replay (F14) through the real services: a selection by status, time and
payload values is counted, replayed in the background at a bounded rate with its
progress, through a restart of the config service, and cancelled; every replay is a
new event linked to its original, each original replayed once."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from libs.infra.mongo.store import Store
from libs.infra.settings import Settings
from tests.support.fixtures import Running, serve, wait_for
from tests.support.system import Api, InProcessSystem, forward_n

pytestmark = pytest.mark.integration
EVENTS = 30


class Verdicts:
    """A receiver that fails the events it is told to (404: failed at once)."""

    def __init__(self) -> None:
        self.failing: set[int] = set()
        self.calls: list[int] = []
        self.running: Running | None = None

    async def handle(self, request: web.Request) -> web.Response:
        n = int(await request.text())
        self.calls.append(n)
        return web.json_response({}, status=404 if n in self.failing else 200)

    async def start(self) -> Verdicts:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.running = await serve(app)
        return self


@pytest.fixture
async def verdicts() -> AsyncIterator[Verdicts]:
    receiver = await Verdicts().start()
    yield receiver
    assert receiver.running is not None
    await receiver.running.stop()


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    # Slow enough for a restart and a cancel to land in the middle of a job.
    slow = msgspec.structs.replace(settings, allow_private_targets=True, bulk_replay_rate_per_s=8.0)
    running = await InProcessSystem(slow).start()
    yield running
    await running.stop()


def _region(n: int) -> str:
    return "eu" if n % 2 else "us"


async def _logged_run(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, verdicts: Verdicts
) -> tuple[str, list[str]]:
    """A connector whose events n % 3 == 0 failed; its id and the events' ids in order."""
    verdicts.failing = {n for n in range(EVENTS) if n % 3 == 0}
    connector, url = await system.ready_connector(api, "bulk", forward_n(verdicts.running.url))  # type: ignore[union-attr]
    cid = connector["id"]
    ids = []
    for n in range(EVENTS):
        body = {"n": n, "customer": {"region": _region(n), "tier": n % 5}}
        async with session.post(url, json=body, headers={"X-Source": f"s{n % 2}"}) as r:
            assert r.status == 200, await r.text()
            ids.append((await r.json())["event_id"])

    async def verdicts_in() -> bool:
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return bool(stats["succeeded"] + stats["failed"] == EVENTS)

    await wait_for(verdicts_in, what="every verdict", timeout_s=60)
    verdicts.failing = set()  # the receiver is fixed: replays succeed
    return cid, ids


async def _replays(store: Store, cid: str) -> dict[str, list[dict[str, Any]]]:
    """The connector's replays by original id."""
    found: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    async for doc in store.events.find({"connector_id": cid, "replay_of": {"$ne": None}}):
        found[doc["replay_of"]].append(doc)
    return found


async def test_plan_counts_and_a_job_replays_each_selected_event_once(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    verdicts: Verdicts,
    store: Store,
) -> None:
    cid, ids = await _logged_run(system, api, session, verdicts)
    base = f"/api/v1/connectors/{cid}/bulk-replay"
    failed = {ids[n] for n in range(EVENTS) if n % 3 == 0}
    eu_failed = {ids[n] for n in range(EVENTS) if n % 3 == 0 and _region(n) == "eu"}
    t10 = (await api.call("GET", f"/api/v1/connectors/{cid}/events/{ids[10]}"))["received_at"]
    plans = [
        ({"status": "failed"}, len(failed)),
        ({"status": "any"}, EVENTS),
        ({"status": "dead_lettered"}, 0),
        ({"status": "failed", "body": {"customer": {"region": "eu"}}}, len(eu_failed)),
        (
            {"status": "any", "body": {"customer": {"tier": [0, 1]}}},
            sum(1 for n in range(EVENTS) if n % 5 in (0, 1)),
        ),
        ({"status": "any", "headers": {"x-source": "s1"}}, EVENTS // 2),
        (
            {"status": "failed", "received_after": t10},
            sum(1 for n in range(10, EVENTS) if n % 3 == 0),
        ),
        ({"status": "any", "received_before": t10}, 10),
    ]
    for selection, expected in plans:
        planned = await api.call("POST", base, {**selection, "plan": True}, expect=200)
        assert planned == {"matched": expected}, selection
    assert await _replays(store, cid) == {}  # a plan replays nothing

    job = await api.call(
        "POST", base, {"status": "failed", "body": {"customer": {"region": "eu"}}}, expect=202
    )
    assert job["matched"] == len(eu_failed)

    async def finished() -> dict[str, Any] | None:
        got = await api.call("GET", f"/api/v1/bulk-replays/{job['id']}", expect=200)
        return got if got["state"] == "done" else None

    done = await wait_for(finished, what="the job to finish", timeout_s=30)
    assert (done["done"], done["matched"], done["skipped"]) == (len(eu_failed), len(eu_failed), 0)
    assert done["selection"]["body"] == {"customer": {"region": "eu"}}

    async def replays_ran() -> dict[str, list[dict[str, Any]]] | None:
        found = await _replays(store, cid)
        ran = all(d["status"] == "succeeded" for docs in found.values() for d in docs)
        return found if set(found) == eu_failed and ran else None

    replays = await wait_for(replays_ran, what="the replays to succeed", timeout_s=30)
    assert all(len(docs) == 1 for docs in replays.values())  # each original once
    listed = await api.call("GET", f"/api/v1/connectors/{cid}/bulk-replays")
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    # The log lists a replay with its original.
    events = await api.call("GET", f"/api/v1/connectors/{cid}/events?limit=500")
    linked = {e["replay_of"] for e in events["items"] if e["replay_of"]}
    assert linked == eu_failed


async def test_a_job_goes_on_through_a_restart_and_stops_when_cancelled(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    verdicts: Verdicts,
    store: Store,
) -> None:
    cid, ids = await _logged_run(system, api, session, verdicts)
    job = await api.call("POST", f"/api/v1/connectors/{cid}/bulk-replay", {"status": "any"})
    assert job["matched"] == EVENTS
    path = f"/api/v1/bulk-replays/{job['id']}"

    async def progressed(at_least: int) -> dict[str, Any] | None:
        got = await api.call("GET", path, expect=200)
        return got if got["done"] >= at_least else None

    before = await wait_for(lambda: progressed(3), what="some progress", timeout_s=30)
    assert before["state"] == "running" and before["done"] < EVENTS
    await system.restart("config")  # the replayer hands its job back; the new one goes on
    api.base = system.apps["config"].url
    after = await wait_for(lambda: progressed(before["done"] + 3), what="more", timeout_s=30)
    assert after["state"] == "running"

    cancelled = await api.call("DELETE", path, expect=200)
    assert cancelled["state"] == "cancelled"

    async def stopped() -> dict[str, Any] | None:
        got = await api.call("GET", path, expect=200)
        return got if got["finished_at"] is not None else None

    final = await wait_for(stopped, what="the replayer to stop", timeout_s=30)
    assert final["state"] == "cancelled"
    assert after["done"] <= final["done"] < EVENTS

    async def all_logged() -> dict[str, list[dict[str, Any]]] | None:
        found = await _replays(store, cid)
        return found if sum(len(d) for d in found.values()) == final["done"] else None

    replays = await wait_for(all_logged, what="the replays in the log", timeout_s=30)
    assert all(len(docs) == 1 for docs in replays.values())  # none twice, restart or not
    # Oldest first: what was replayed is the first `done` events.
    assert set(replays) == set(ids[: final["done"]])
    # A finished job stays as it is.
    again = await api.call("DELETE", path, expect=200)
    assert (again["state"], again["done"]) == ("cancelled", final["done"])


async def test_bad_bulk_replays_are_4xx(system: InProcessSystem, api: Api) -> None:
    connector = await api.create_connector("bulk-bad")
    base = f"/api/v1/connectors/{connector['id']}/bulk-replay"
    for body, status, code in [
        ({"status": "nope"}, 422, "invalid_status"),
        ({"body": {"a": {}}}, 422, "invalid_selection"),
        ({"body": {"a": [{"b": 1}]}}, 422, "invalid_selection"),
        ({"body": {f"k{i}": 1 for i in range(11)}}, 422, "invalid_selection"),
        ({"received_after": "soon"}, 422, "invalid_received_after"),
        ({"version": 99}, 422, "invalid_version"),
        ({"unknown": 1}, 422, None),
    ]:
        got = await api.call("POST", base, body, expect=status)
        if code is not None:
            assert got["error"]["code"] == code, body
    await api.call("GET", "/api/v1/bulk-replays/nope", expect=404)
    await api.call("DELETE", "/api/v1/bulk-replays/nope", expect=404)
    await api.call("POST", "/api/v1/connectors/nope/bulk-replay", {}, expect=404)
