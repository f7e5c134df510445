"""The pipeline in one process against real nats-server and SecantusDB."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import pytest
from pymongo.errors import WriteError

from libs.infra.mongo.contacts import Contacts
from tests.support.fixtures import wait_for
from tests.support.steps import day_branch
from tests.support.system import Api, InProcessSystem, Receiver

pytestmark = pytest.mark.integration


def drip_config(receiver_url: str) -> dict[str, Any]:
    def branch(day: str) -> dict[str, Any]:
        send = {
            "type": "http",
            "id": f"{day}-send",
            "method": "POST",
            "url": receiver_url + f"/{day}",
            "headers": {"Content-Type": "application/json"},
            "body": '{"day": "' + day + '", "name": {{ body.name | json }}}',
        }
        return day_branch(day, f"{day}-branch", f"{day}-filter", send)

    return {"steps": [branch("day1"), branch("day2")]}


async def test_two_branches_one_url(
    system: InProcessSystem, api: Api, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    connector, url = await system.ready_connector(api, "drip", drip_config(receiver.url))
    ids = []
    for day, name in (("day1", "Ann"), ("day2", "Bob")):
        async with session.post(f"{url}?value={day}", json={"name": name}) as r:
            assert r.status == 200
            ids.append((await r.json())["event_id"])

    await wait_for(lambda: len(receiver.calls) >= 2, what="two HTTP calls")
    calls = sorted((c["path"], msgspec.json.decode(c["body"])) for c in receiver.calls)
    assert calls == [
        ("/day1", {"day": "day1", "name": "Ann"}),
        ("/day2", {"day": "day2", "name": "Bob"}),
    ]

    cid = connector["id"]

    async def both_logged() -> bool:
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return bool(stats["succeeded"] == 2)

    await wait_for(both_logged, what="stats to count two successes")
    stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
    assert (stats["received"], stats["succeeded"], stats["failed"]) == (2, 2, 0)
    listing = await api.call("GET", f"/api/v1/connectors/{cid}/events")
    assert {i["event_id"] for i in listing["items"]} == set(ids)
    detail = await api.call("GET", f"/api/v1/connectors/{cid}/events/{ids[0]}", expect=200)
    by_step = {s["step_id"]: s["status"] for s in detail["execution"]}
    assert by_step == {
        "day1-filter": "succeeded",
        "day1-send": "succeeded",
        "day2-filter": "filtered",
    }
    assert detail["event"]["custom_variables"] == {"value": "day1"}
    assert len(receiver.calls) == 2  # nothing ran twice


async def test_structure_learned_from_first_event(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector, url = await system.ready_connector(api, "learn")
    async with session.post(url, json={"order": {"id": 7, "items": [{"sku": "A1"}]}}) as r:
        assert r.status == 200
    from libs.infra.mongo import store as hmongo

    store = hmongo.Store(hmongo.client(system.settings), system.settings.mongo_db)
    try:
        doc = await wait_for(lambda: store.get_structure(connector["id"]), what="structure")
        paths = {f["path"]: f["type"] for f in doc["fields"]}
        assert paths["body.order.id"] == "integer"
        assert paths["body.order.items[0].sku"] == "string"
    finally:
        await store.mongo.close()


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        (
            {"data": b"x", "headers": {"Content-Type": "text/plain; charset=zlib_codec"}},
            400,
            "unsupported_charset",
        ),
        (
            {"data": b"x" * 2048, "headers": {"Content-Type": "text/plain"}},
            413,
            "payload_too_large",
        ),
    ],
    ids=["invalid-json", "unsupported-charset", "too-large"],
)
async def test_bad_input_gets_clear_4xx(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    connector = await api.create_connector("strict", {"max_body_bytes": 1024})
    await system.knows(connector)
    async with session.post(system.ingest_url(connector), **kwargs) as r:
        assert r.status == status
        assert (await r.json())["error"]["code"] == code

    async def counted() -> bool:
        stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
        return bool(stats["rejected"] == 1)

    await wait_for(counted, what="the rejection to be counted")


async def test_body_kinds_and_query(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector, url = await system.ready_connector(api, "kinds")
    form = aiohttp.FormData()
    form.add_field("name", "Ann")
    form.add_field("file", b"abc", filename="a.txt", content_type="text/plain")
    sends = [
        ("GET", {"params": {"name": "q", "tag": "x"}}),
        ("POST", {"data": {"name": "Ann", "city": "Oslo"}}),  # form url-encoded
        ("PUT", {"data": form}),
        ("PATCH", {"data": "plain words", "headers": {"Content-Type": "text/plain"}}),
        ("POST", {"json": [1, 2, 3]}),
    ]
    ids = []
    for method, kwargs in sends:
        async with session.request(method, url, **kwargs) as r:
            assert r.status == 200, await r.text()
            ids.append((await r.json())["event_id"])

    cid = connector["id"]

    async def all_done() -> bool:
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return bool(stats["succeeded"] == len(sends))

    await wait_for(all_done, what="all events logged")
    events = [await api.call("GET", f"/api/v1/connectors/{cid}/events/{i}") for i in ids]
    assert events[0]["event"] == {"body": None, "custom_variables": {"name": "q", "tag": "x"}}
    assert events[1]["event"]["body"] == {"name": "Ann", "city": "Oslo"}
    assert events[2]["event"]["body"] == {
        "name": "Ann",
        "file": {"filename": "a.txt", "content_type": "text/plain", "size": 3},
    }
    raw = events[2]["raw_body"]  # the file's bytes are in the record, not in the body
    assert raw["encoding"] == "utf-8" and 'filename="a.txt"' in raw["data"]
    assert "\r\n\r\nabc\r\n" in raw["data"] and raw["size"] == len(raw["data"].encode())
    assert events[3]["event"]["body"] == "plain words"
    assert events[4]["event"]["body"] == [1, 2, 3]
    assert [e["request"]["method"] for e in events] == ["GET", "POST", "PUT", "PATCH", "POST"]


async def test_rotate_url(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector = await api.create_connector("rotating")
    await system.knows(connector)
    old_url = system.ingest_url(connector)
    rotated = await api.call("POST", f"/api/v1/connectors/{connector['id']}/rotate-url", expect=200)
    assert rotated["url"] != connector["url"]
    await system.knows(rotated)
    async with session.post(old_url, json={}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not_found"
    async with session.post(system.ingest_url(rotated), json={}) as r:
        assert r.status == 200


async def test_config_api_needs_token(
    system: InProcessSystem, session: aiohttp.ClientSession
) -> None:
    base = system.apps["config"].url + "/api/v1/connectors"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        async with session.get(base, headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"
    # A token with bytes that are not UTF-8 (sent raw: clients refuse to) is a 401 too.
    host, port = system.apps["config"].url.rsplit("/", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /api/v1/connectors HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xed\xa0\x80\xff\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b" 401 " in status_line, status_line


async def test_stale_save_is_refused(system: InProcessSystem, api: Api) -> None:
    connector = await api.create_connector("versions")
    path = f"/api/v1/connectors/{connector['id']}"
    saved = await api.call("PUT", path, {"version": 1, "config": {}}, expect=200)
    assert saved["version"] == 2
    refused = await api.call("PUT", path, {"version": 1, "config": {}}, expect=409)
    assert refused["error"]["code"] == "stale_version"
    versions = await api.call("GET", path + "/versions", expect=200)
    assert [v["version"] for v in versions["items"]] == [2, 1]


async def _map_two(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, name: str, scores: list[int]
) -> list[dict[str, Any]]:
    """Two events with a number attribute ``score``: their log entries once judged."""
    await api.call("POST", "/api/v1/attributes", {"name": "score", "type": "number"})
    mail = {"type": "email", "id": "mail", "host": "smtp.example.com", "from_address": "a@b.c"}
    await api.call("POST", "/api/v1/channels", mail)
    mapping = {"email": "body.email", "channel": "mail", "attributes": {"score": "body.score"}}
    connector = await api.create_connector(name, {"mapping": mapping})
    await system.knows(connector)
    ids = []
    for n, score in enumerate(scores):
        body = {"email": f"{name}{n}@example.com", "score": score}
        async with session.post(system.ingest_url(connector), json=body) as r:
            assert r.status == 200
            ids.append((await r.json())["event_id"])
    cid = connector["id"]

    async def judged() -> list[dict[str, Any]] | None:
        found = [await api.found(f"/api/v1/connectors/{cid}/events/{i}") for i in ids]
        if all(f and f["status"] != "received" for f in found):
            return found  # type: ignore[return-value]
        return None

    return await wait_for(judged, what="the events judged")


async def test_a_contact_attribute_beyond_64_bits_is_stored_exactly(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    """Before: MongoDB refused the integer and the event was a mapping error."""
    big, fine = await _map_two(system, api, session, "bigscore", [2**70, -(2**64)])
    for entry, score in ((big, 2**70), (fine, -(2**64))):
        assert entry["mapping"]["status"] == "created", entry["mapping"]
        contact_id = entry["mapping"]["contact_id"]
        contact = await api.call("GET", f"/api/v1/contacts/{contact_id}", expect=200)
        assert contact["attributes"]["score"] == score


async def test_an_event_the_contacts_store_refuses_does_not_hold_the_others(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch write that the store refuses because of one event failed the mapper's
    whole batch, which was nak'ed again and again.  Now the batch is mapped event by
    event: the poison event is logged with its mapping as an error, the others are
    mapped.  The store's refusal is injected (a WriteError, as MongoDB gives for a
    document it cannot hold) for one score, since every JSON value is storable now."""
    real = Contacts.apply

    async def refusing(self: Contacts, plans: Any, *args: Any, **kwargs: Any) -> Any:
        if any(plan.attributes.get("score") == 666 for _, plan in plans):
            raise WriteError("document refused", code=2)
        return await real(self, plans, *args, **kwargs)

    monkeypatch.setattr(Contacts, "apply", refusing)
    poison, fine = await _map_two(system, api, session, "poison", [666, 1])
    assert poison["mapping"]["status"] == "error", poison["mapping"]
    assert "WriteError" in poison["mapping"]["reason"]
    assert fine["mapping"]["status"] == "created", fine["mapping"]
