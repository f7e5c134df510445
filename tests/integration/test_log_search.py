"""Search of the event log by value (F14) through the real services: events of varied
bodies, headers and query strings go through ingest, mapper and executor; the log's
answers to each search are compared with what the sent events say they should be."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from libs.infra.mongo import store as hmongo
from services.config.projector import searchable
from tests.support.fixtures import serve, wait_for
from tests.support.system import Api, InProcessSystem, forward_n

pytestmark = pytest.mark.integration
EVENTS = 40


def _sent(n: int) -> dict[str, Any]:
    """Event n: what is posted, and the fields the searches select on."""
    return {
        "n": n,
        "body": {
            "n": n,
            "order": {"id": 2**63 + n, "tags": ["all", f"t{n % 3}"], "total": n + 0.5},
            "customer": {"email": f"u{n % 4}@example.com", "vip": n % 6 == 0},
        },
        "headers": {"X-Shop": f"shop{n % 2}"},
        "query": {"campaign": f"c{n % 5}"},
        # The receiver's verdict on the event's call: 404 fails it at once, 500 every
        # time dead-letters it after its retries.
        "answer": 404 if n % 7 == 3 else 500 if n % 9 == 4 else 200,
    }


SENT = [_sent(n) for n in range(EVENTS)]


async def _receiver() -> Any:
    async def handle(request: web.Request) -> web.Response:
        n = int(await request.text())
        return web.json_response({}, status=SENT[n]["answer"])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return await serve(app)


async def _search(api: Api, cid: str, params: dict[str, str], limit: int = 500) -> list[str]:
    """Every event id the search finds, following the pages' cursors."""
    found: list[str] = []
    query = {**params, "limit": str(limit)}
    for _ in range(100):  # bounded: 40 events need at most 40 pages
        qs = urllib.parse.urlencode(query)
        page = await api.call("GET", f"/api/v1/connectors/{cid}/events?{qs}")
        found += [item["event_id"] for item in page["items"]]
        if page["next_before"] is None:
            return found
        query["before"] = page["next_before"]
    raise AssertionError("the pages never ended")


def _ids(ids: list[str], keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {event_id for event_id, sent in zip(ids, SENT, strict=True) if keep(sent)}


async def test_search_by_body_headers_custom_variables_status_and_time(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    receiver = await _receiver()
    try:
        connector, url = await system.ready_connector(api, "search", forward_n(receiver.url + "/x"))
        cid = connector["id"]
        ids: list[str] = []
        for sent in SENT:  # one after the other: the log's times follow n
            target = url + "?" + urllib.parse.urlencode(sent["query"])
            async with session.post(target, json=sent["body"], headers=sent["headers"]) as r:
                assert r.status == 200, await r.text()
                ids.append((await r.json())["event_id"])

        async def all_done() -> bool:
            stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
            return bool(stats["succeeded"] + stats["failed"] == EVENTS)

        await wait_for(all_done, what="every event's verdict", timeout_s=60)

        cases: list[tuple[dict[str, str], Callable[[dict[str, Any]], bool]]] = [
            ({"body.customer.email": "u1@example.com"}, lambda s: s["n"] % 4 == 1),
            # A 64-bit id, exactly; a float in another spelling; a boolean.
            ({"body.order.id": str(2**63 + 7)}, lambda s: s["n"] == 7),
            ({"body.order.total": "12.50"}, lambda s: s["n"] == 12),
            ({"body.customer.vip": "true"}, lambda s: s["n"] % 6 == 0),
            # Any position of a list, with or without the position in the path.
            ({"body.order.tags": "t2"}, lambda s: s["n"] % 3 == 2),
            ({"body.order.tags[1]": "t2"}, lambda s: s["n"] % 3 == 2),
            # Header names in any case; query parameters as custom variables; combined.
            (
                {"headers.x-shop": "shop1", "custom_variables.campaign": "c0"},
                lambda s: s["n"] % 2 == 1 and s["n"] % 5 == 0,
            ),
            ({"headers.X-SHOP": "shop0"}, lambda s: s["n"] % 2 == 0),
            ({"status": "failed"}, lambda s: s["answer"] != 200),
            ({"status": "dead_lettered"}, lambda s: s["answer"] == 500),
            (
                {"status": "succeeded", "body.customer.email": "u3@example.com"},
                lambda s: s["answer"] == 200 and s["n"] % 4 == 3,
            ),
            ({"body.customer.email": "nobody@example.com"}, lambda s: False),
        ]
        for params, keep in cases:
            found = await _search(api, cid, params)
            assert len(found) == len(set(found)), params  # no entry twice
            assert set(found) == _ids(ids, keep), params

        # Time: from event 20's receipt on, and before event 30's.  The log keeps times to
        # the millisecond (as MongoDB does), so two events may share one: the expected
        # set is read off the logged times, not the sending order.
        logged = {
            n: (await api.call("GET", f"/api/v1/connectors/{cid}/events/{ids[n]}"))["received_at"]
            for n in range(EVENTS)
        }
        after, before = logged[20], logged[30]
        window = {"received_after": after, "received_before": before}
        at = {n: datetime.fromisoformat(t) for n, t in logged.items()}
        inside = {n for n in at if at[20] <= at[n] < at[30]}
        # Not degenerate: the events sent between 20 and 30, but those logged in the same
        # millisecond as 20 or 30 may fall either side of the bounds.
        assert len(inside) >= 5 and inside <= set(range(15, 35))
        found = await _search(api, cid, window)
        assert set(found) == {ids[n] for n in inside}
        found = await _search(api, cid, {**window, "headers.x-shop": "shop1"})
        assert set(found) == {ids[n] for n in inside if n % 2}

        # Small pages: newest first, every match once, the cursor going on.
        found = await _search(api, cid, {"body.order.tags": "all"}, limit=3)
        assert found == list(reversed(ids))
    finally:
        await receiver.stop()


async def test_bad_searches_are_400_naming_the_parameter(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector = await api.create_connector("bad-search")
    base = f"/api/v1/connectors/{connector['id']}/events"
    for qs, code in [
        ("body.=1", "invalid_search"),
        ("body.a[=1", "invalid_search"),
        ("&".join(f"body.k{i}=1" for i in range(11)), "invalid_search"),
        ("status=nope", "invalid_status"),
        ("received_after=yesterday", "invalid_received_after"),
        ("before=2026-13-01", "invalid_before"),
        ("headers.host=127.0.0.1", "invalid_search"),
        ("headers.x-hub-signature-256=sha256%3Dab", "invalid_search"),
    ]:
        async with session.get(api.base + base + "?" + qs, headers=api.headers) as r:
            assert r.status == 400, (qs, await r.text())
            assert (await r.json())["error"]["code"] == code, qs


def _former_term(field: str, keys: tuple[str, ...], value: str) -> str:
    """A term as the previous release stored it: a 9-byte blake2b, base64 (12 chars)."""
    text = "\x1f".join((field, *keys)) + "\x00" + value
    digest = hashlib.blake2b(text.encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


async def test_an_entry_logged_with_the_former_string_terms_is_still_found(
    system: InProcessSystem, api: Api
) -> None:
    """Entries written by the previous release hold 12-character string terms."""
    connector = await api.create_connector("former-terms")
    cid = connector["id"]
    doc = searchable(
        {
            "_id": "former-1",
            "connector_id": cid,
            "status": "failed",
            "received_at": datetime.now(UTC),
            "body": {"order": {"id": 42}},
            "request": {"method": "POST", "headers": {"X-Shop": "old"}},
            "custom_variables": {},
        },
        retention_days=30,
    )
    doc["terms"] = [
        _former_term("status", (), "failed"),
        _former_term("body", ("order", "id"), "42"),
        _former_term("headers", ("x-shop",), "old"),
    ]
    store = hmongo.Store(hmongo.client(system.settings), system.settings.mongo_db)
    try:
        await store.events.insert_one(doc)
    finally:
        await store.mongo.close()
    for params in (
        {"body.order.id": "42"},
        {"headers.x-shop": "old", "status": "failed"},
    ):
        assert await _search(api, cid, params) == ["former-1"], params
    assert await _search(api, cid, {"body.order.id": "43"}) == []
