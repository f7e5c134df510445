"""Delivery semantics and mapping through the real pipeline: retries on a backoff
schedule, dead-lettering, permanent failures, field mapping results, drift flags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import nats
import pytest

from libs.infra.nats import subjects
from libs.infra.settings import Settings
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem, Receiver, forward_n

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    settings = msgspec.structs.replace(
        settings, allow_private_targets=True, retry_backoff="0.1,0.2"
    )
    running = await InProcessSystem(settings).start()
    yield running
    await running.stop()


async def _one_event(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    connector: dict[str, Any],
    body: Any,
    query: str = "",
) -> dict[str, Any]:
    async with session.post(system.ingest_url(connector) + query, json=body) as r:
        assert r.status == 200
        event_id = (await r.json())["event_id"]
    path = f"/api/v1/connectors/{connector['id']}/events/{event_id}"

    async def finished() -> dict[str, Any] | None:
        detail = await api.found(path)
        return detail if detail and detail["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = await wait_for(finished, what=f"event {event_id} to finish")
    return result


async def test_transient_failures_are_retried(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses = [503, 429]  # then 200
    connector = await api.create_connector("retry", forward_n(receiver.url + "/x"))
    await system.knows(connector)
    detail = await _one_event(system, api, session, connector, {"n": 1})
    assert detail["status"] == "succeeded"
    assert detail["attempts"] == 3
    assert len(receiver.calls) == 3


async def test_last_attempt_dead_letters(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500, 500, 500]
    nc = await nats.connect(system.settings.nats_url)
    dead: list[bytes] = []

    async def collect(msg: Any) -> None:
        dead.append(msg.data)

    sub = await nc.subscribe(subjects.all_dead_letters(system.settings.prefix), cb=collect)
    try:
        connector = await api.create_connector("dlq", forward_n(receiver.url + "/x"))
        await system.knows(connector)
        detail = await _one_event(system, api, session, connector, {"n": 2})
        assert detail["status"] == "failed"
        assert "gave up after 3 attempts" in detail["error"]
        assert len(receiver.calls) == 3  # one try + two retries, as the schedule says
        await wait_for(lambda: dead, what="the dead-lettered event")
        assert msgspec.json.decode(dead[0])["event_id"] == detail["event_id"]

        async def counted() -> bool:  # the stats are written after the entry
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            return bool(stats["failed"] == 1)

        assert await wait_for(counted, what="the failure counted")
    finally:
        await sub.unsubscribe()
        await nc.close()


async def test_permanent_failure_fails_at_once(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses = [404]
    config = forward_n(receiver.url + "/gone")
    config["steps"].append({"type": "http", "id": "after", "url": receiver.url + "/after"})
    connector = await api.create_connector("permanent", config)
    await system.knows(connector)
    detail = await _one_event(system, api, session, connector, {"n": 3})
    assert detail["status"] == "failed"
    assert detail["attempts"] == 1
    steps = {s["step_id"]: s for s in detail["execution"]}
    assert steps["call"]["status"] == "failed" and "404" in steps["call"]["error"]
    assert "after" not in steps  # the failed action stopped its branch
    assert [c["path"] for c in receiver.calls] == ["/gone"]


async def test_private_targets_refused_without_permission(
    settings: Settings, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    system = await InProcessSystem(settings).start()  # allow_private_targets is off
    try:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector = await api.create_connector("ssrf", forward_n(receiver.url + "/x"))
        await system.knows(connector)
        detail = await _one_event(system, api, session, connector, {"n": 4})
        assert detail["status"] == "failed"
        assert "private or loopback" in detail["execution"][0]["error"]
        assert receiver.calls == []
    finally:
        await system.stop()


async def test_missing_attribute_is_noted(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    config = {
        "steps": [
            {
                "type": "http",
                "id": "call",
                "url": receiver.url + "/x",
                "body": "[{{ body.nothere }}]",
            }
        ]
    }
    connector = await api.create_connector("missing", config)
    await system.knows(connector)
    detail = await _one_event(system, api, session, connector, {"n": 5})
    assert detail["status"] == "succeeded"
    assert detail["execution"][0]["output"]["missing"] == ["nothere"]
    assert receiver.calls[0]["body"] == "[]"


async def test_mapping_results_and_drift(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    await api.call("POST", "/api/v1/attributes", {"name": "city", "type": "text"}, expect=201)
    await api.call(
        "POST",
        "/api/v1/channels",
        {"type": "http", "id": "web", "base_url": "https://example.com"},
        expect=201,
    )
    await api.call("POST", "/api/v1/agents", {"email": "boss@example.com"}, expect=201)
    mapping = {
        "mobile": "body.phone",
        "email": "body.email",
        "name": "body.name",
        "channel": "web",
        "owner_from": "body.owner",
        "attributes": {"city": "body.city"},
    }
    connector = await api.create_connector("crm")
    await system.knows(connector)
    first = {
        "phone": "415 555 0101",
        "email": "x@y.z",
        "name": "Ann",
        "city": "Oslo",
        "owner": "boss@example.com",
    }
    await _one_event(system, api, session, connector, first)
    saved = await api.call(
        "PUT",
        f"/api/v1/connectors/{connector['id']}",
        {"version": 1, "config": {"mapping": mapping}},
        expect=200,
    )
    await system.knows(saved)
    created = await _one_event(system, api, session, connector, first)
    assert created["mapping"]["status"] == "created"
    assert created["mapping"]["contact"]["owner"] == "boss@example.com"
    again = await _one_event(system, api, session, connector, first | {"city": "Bergen"})
    assert again["mapping"]["status"] == "updated"
    assert again["mapping"]["contact"]["attributes"]["city"] == "Bergen"
    by_email = await _one_event(
        system, api, session, connector, {"email": "X@Y.Z", "name": "Ann", "owner": "nobody@x.io"}
    )
    assert by_email["mapping"]["status"] == "matched_email"
    assert any("nobody@x.io" in e for e in by_email["mapping"]["errors"])
    assert by_email["drift"]["missing"] == ["body.city", "body.phone"]
    assert any("$.mapping.mobile" in a for a in by_email["drift"]["affected"])
    nobody = await _one_event(system, api, session, connector, {"name": "Nobody"})
    assert nobody["mapping"]["status"] == "skipped"
    contacts = await api.call("GET", "/api/v1/contacts?email=x@y.z")
    assert [c["mobile"] for c in contacts["items"]] == ["+14155550101"]
    # The sender starts sending the number as a JSON number: still mapped, and flagged.
    now_sent = first | {"city": "Bergen", "phone": 4155550101}
    retyped = await _one_event(system, api, session, connector, now_sent)
    assert retyped["mapping"]["status"] == "unchanged"
    assert retyped["drift"]["changed"] == [
        {"path": "body.phone", "expected": "string", "actual": "integer"}
    ]
    assert retyped["drift"]["added"] == retyped["drift"]["missing"] == []
    assert any("$.mapping.mobile" in a for a in retyped["drift"]["affected"])


async def test_a_value_no_http_library_takes_fails_the_step_not_forever(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """Before: a CR/LF from the webhook in a header made aiohttp raise ValueError, which
    escaped the engine holding its claim, was nak'ed as infrastructure with no bound,
    and the request was sent again every lease, forever.  Now: a logged failure."""
    step = {
        "type": "http",
        "id": "h",
        "url": receiver.url + "/x",
        "headers": {"X-A": "{{ body.v }}"},
    }
    connector = await api.create_connector("crlf", {"steps": [step]})
    await system.knows(connector)
    detail = await _one_event(system, api, session, connector, {"v": "a\r\nX-Evil: 1"})
    assert detail["status"] == "failed" and detail["attempts"] == 1
    assert detail["execution"][0]["status"] == "failed"
    assert "ValueError" in detail["execution"][0]["error"]
    assert not any("X-Evil" in c["headers"] for c in receiver.calls)


async def test_a_response_bson_cannot_hold_is_journaled_exactly(
    system: InProcessSystem,
    api: Api,
    session: aiohttp.ClientSession,
    start_app: Any,
    receiver: Receiver,
) -> None:
    """Before: an integer >= 2**63 in an HTTP response could not be journaled, so the
    event never ended.  Now the journal keeps it exactly and later steps read it."""
    from aiohttp import web

    async def big(_request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"id": 18446744073709551616, "k.$": 1}', content_type="application/json"
        )

    app = web.Application()
    app.router.add_post("/big", big)
    upstream = await start_app(app)
    steps = [
        {"type": "http", "id": "lookup", "url": upstream.url + "/big"},
        {
            "type": "http",
            "id": "echo",
            "url": receiver.url + "/e",
            "body": "{{ formatter.lookup.body.id }}",
        },
    ]
    connector = await api.create_connector("bigresponse", {"steps": steps})
    await system.knows(connector)
    detail = await _one_event(system, api, session, connector, {"n": 1})
    assert detail["status"] == "succeeded", detail["execution"]
    assert receiver.calls[-1]["body"] == str(2**64)


async def test_http_actions_carry_a_stable_idempotency_key(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses = [503]  # the retry sends the same key again
    connector = await api.create_connector("idem", forward_n(receiver.url + "/x", "call"))
    await system.knows(connector)
    detail = await _one_event(system, api, session, connector, {"n": 1})
    keys = [c["headers"].get("Idempotency-Key") for c in receiver.calls]
    assert keys == [f"{detail['event_id']}:call"] * 2
