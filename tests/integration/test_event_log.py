"""The event log's two projections against a real SecantusDB: whichever of an event's
received entry and verdict comes first, the entry ends whole and is counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest

from libs.infra.mongo import store as hmongo
from libs.infra.settings import Settings
from tests.support.fixtures import wait_for
from tests.support.system import InProcessSystem, one_refused_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def received(event_id: str) -> dict[str, Any]:
    return {
        "_id": event_id,
        "connector_id": "c1",
        "connector_version": 1,
        "received_at": T0,
        "status": "received",
        "body": {"n": 1},
    }


def verdict(event_id: str, status: str = "succeeded") -> dict[str, Any]:
    return received(event_id) | {
        "status": status,
        "outcome_at": T0 + timedelta(seconds=1),
        "attempts": 1,
    }


async def test_verdict_first_is_one_insert_and_the_received_entry_a_skipped_duplicate(
    store: hmongo.Store,
) -> None:
    assert await store.record_outcomes([verdict("a")]) == ({"a"}, {"a"})
    assert await store.record_received([received("a")]) == set()  # not counted again
    entry = await store.events.find_one({"_id": "a"})
    assert entry is not None
    assert (entry["status"], entry["body"]) == ("succeeded", {"n": 1})


async def test_received_first_then_verdict_updates_it(store: hmongo.Store) -> None:
    assert await store.record_received([received("b")]) == {"b"}
    assert await store.record_outcomes([verdict("b")]) == ({"b"}, set())
    entry = await store.events.find_one({"_id": "b"})
    assert entry is not None
    assert (entry["status"], entry["attempts"], entry["received_at"]) == ("succeeded", 1, T0)


async def test_a_redelivered_verdict_changes_nothing_and_counts_nothing(
    store: hmongo.Store,
) -> None:
    await store.record_received([received("c")])
    assert await store.record_outcomes([verdict("c"), verdict("d")]) == ({"c", "d"}, {"d"})
    again = [verdict("c", "failed"), verdict("d", "failed"), verdict("e")]
    assert await store.record_outcomes(again) == ({"e"}, {"e"})
    statuses = {e["_id"]: e["status"] async for e in store.events.find({})}
    assert statuses == {"c": "succeeded", "d": "succeeded", "e": "succeeded"}


async def test_an_event_waiting_for_its_verdict_shows_as_received_after_the_grace(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """No executor at first: the received projection puts the event back once for the
    grace, then logs it as received; once an executor runs, its verdict completes the
    entry, and the stats count it once."""
    settings = msgspec.structs.replace(settings, log_grace_s=0.5)
    system = await InProcessSystem(settings).start(only=("config", "ingest", "mapper"))
    try:
        api, connector = await one_refused_event(system, session, settings.admin_token, "grace")
        events_path = f"/api/v1/connectors/{connector['id']}/events"

        async def logged(status: str) -> dict[str, Any] | None:
            page: dict[str, Any] = await api.call("GET", events_path)
            items = page["items"]
            return items[0] if items and items[0]["status"] == status else None

        await wait_for(lambda: logged("received"), what="the event logged as received")
        await system.start(only=("executor",))
        await wait_for(lambda: logged("failed"), what="the event's verdict")

        async def counted() -> bool:  # the stats are written after the entry
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            return bool((stats["received"], stats["failed"], stats["succeeded"]) == (1, 1, 0))

        assert await wait_for(counted, what="received 1, failed 1, succeeded 0")
    finally:
        await system.stop()


async def test_a_map_response_previews_against_a_logged_event_as_ingest_answers(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    from tests.support.system import Api

    api = Api(session, system.apps["config"].url, settings.admin_token)
    template = (
        '{"hi": {{ body.customer.name | upper | json }}, "day": "{{ custom_variables.value }}"}'
    )
    response = {"status": 202, "content_type": "application/json", "body": template}
    connector, url = await system.ready_connector(api, "preview", {"response": response})
    async with session.post(url + "?value=day2", json={"customer": {"name": "Ann"}}) as r:
        answered = (r.status, await r.text())

    async def logged() -> list[Any] | None:
        items = (await api.call("GET", f"/api/v1/connectors/{connector['id']}/events"))["items"]
        return items or None

    [entry] = await wait_for(logged, what="the event in the log")
    path = f"/api/v1/connectors/{connector['id']}/events/{entry['event_id']}/response-preview"
    preview = await api.call("POST", path, {"response": response}, expect=200)
    assert (preview["status"], preview["body"]) == answered == (202, '{"hi": "ANN", "day": "day2"}')
    broken = await api.call(
        "POST", path, {"response": {"body": "{{ body.customer.name | nope }}"}}, expect=200
    )
    assert "nope" in broken["error"] and entry["event_id"] in broken["body"]
    default = await api.call("POST", path, {"response": {}}, expect=200)
    assert default["body"] == f'{{"event_id":"{entry["event_id"]}","status":"stored"}}'
