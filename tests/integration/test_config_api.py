"""The config API against real servers: versions, validation, Map Response, structure,
attributes, stats reset and replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from libs.infra.settings import Settings
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    running = await InProcessSystem(settings).start()
    yield running
    await running.stop()


async def _send(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.post(url, **kwargs) as r:
        return r.status, await r.text()


async def _stats(api: Api, cid: str) -> dict[str, Any]:
    result: dict[str, Any] = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
    return result


async def test_racing_saves_one_wins(api: Api) -> None:
    connector = await api.create_connector("race")
    path = f"/api/v1/connectors/{connector['id']}"
    saves = [
        api.session.put(
            api.base + path,
            headers=api.headers,
            json={"version": 1, "config": {"response": {"status": 200 + i}}},
        )
        for i in range(6)
    ]
    responses = await asyncio.gather(*saves)
    statuses = sorted(r.status for r in responses)
    for r in responses:
        r.release()
    assert statuses == [200, 409, 409, 409, 409, 409]
    now = await api.call("GET", path)
    assert now["version"] == 2
    versions = await api.call("GET", path + "/versions")
    assert [v["version"] for v in versions["items"]] == [2, 1]


async def test_only_twenty_versions_kept_and_restore(api: Api) -> None:
    connector = await api.create_connector("many")
    path = f"/api/v1/connectors/{connector['id']}"
    version = 1
    for i in range(24):
        saved = await api.call(
            "PUT",
            path,
            {"version": version, "config": {"response": {"status": 201 + i % 5}}},
            expect=200,
        )
        version = saved["version"]
    versions = await api.call("GET", path + "/versions")
    numbers = [v["version"] for v in versions["items"]]
    assert numbers == list(range(25, 5, -1))
    gone = await api.call("POST", path + "/versions/3/restore", expect=404)
    assert gone["error"]["code"] == "version_not_found"
    restored = await api.call("POST", path + "/versions/10/restore", expect=200)
    assert restored["version"] == 26
    v10 = next(v for v in versions["items"] if v["version"] == 10)
    assert restored["config"] == v10["config"]


async def test_invalid_config_lists_every_problem(api: Api) -> None:
    connector = await api.create_connector("invalid")
    config = {
        "mapping": {"name": "body.name"},
        "steps": [
            {
                "type": "filter",
                "id": "f",
                "when": {
                    "conditions": [{"attribute": "body.x", "op": "regex", "value": "(unclosed"}]
                },
            },
            {
                "type": "formatter",
                "id": "fmt",
                "output": "when",
                "op": "date.nope",
                "input": "{{ body.x }}",
            },
            {
                "type": "http",
                "id": "h",
                "url": "https://example.com/{{ formatter.nothing }}",
                "body": "{{ body.name | }}",
            },
            {
                "type": "email",
                "id": "e",
                "to": "{{ system.email }}",
                "subject": "s",
                "text": "hi",
                "channel": "no-such-channel",
            },
        ],
    }
    result = await api.call(
        "PUT", f"/api/v1/connectors/{connector['id']}", {"version": 1, "config": config}, expect=422
    )
    assert result["error"]["code"] == "invalid_config"
    paths = {p["path"] for p in result["error"]["problems"]}
    assert {
        "$.mapping",
        "$.steps[0].when.conditions[0].value",
        "$.steps[1].options",
        "$.steps[2].url",
        "$.steps[2].body",
        "$.steps[3].channel",
    } <= paths
    unchanged = await api.call("GET", f"/api/v1/connectors/{connector['id']}")
    assert unchanged["version"] == 1


async def test_filter_on_field_the_structure_lacks(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector = await api.create_connector("structured")
    await system.knows(connector)
    assert (await _send(session, system.ingest_url(connector), json={"order": {"id": 1}}))[0] == 200
    cid = connector["id"]
    await wait_for(
        lambda: api.found(f"/api/v1/connectors/{cid}/structure"), what="structure learned"
    )
    bad = {
        "steps": [
            {
                "type": "filter",
                "id": "f",
                "when": {
                    "conditions": [
                        {"attribute": "body.order.total", "op": "greater_than", "value": 5}
                    ]
                },
            }
        ]
    }
    result = await api.call(
        "PUT", f"/api/v1/connectors/{cid}", {"version": 1, "config": bad}, expect=422
    )
    assert result["error"]["problems"][0]["path"] == "$.steps[0].when.conditions[0].attribute"
    good = {
        "steps": [
            {
                "type": "filter",
                "id": "f",
                "when": {
                    "conditions": [{"attribute": "body.order.id", "op": "greater_than", "value": 0}]
                },
            }
        ]
    }
    await api.call("PUT", f"/api/v1/connectors/{cid}", {"version": 1, "config": good}, expect=200)


async def test_map_response_echoes_challenge(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    config = {
        "response": {
            "status": 200,
            "content_type": "text/plain",
            "body": "{{ custom_variables['hub.challenge'] }}",
        }
    }
    connector = await api.create_connector("handshake", config)
    await system.knows(connector)
    async with session.get(
        system.ingest_url(connector),
        params={"hub.mode": "subscribe", "hub.challenge": "1158201444"},
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        assert await r.text() == "1158201444"
    xml = {
        "response": {
            "status": 202,
            "content_type": "application/xml",
            "body": '<ok id="{{ event_id }}">{{ body.name }}</ok>',
        }
    }
    saved = await api.call(
        "PUT",
        f"/api/v1/connectors/{connector['id']}",
        {"version": connector["version"], "config": xml},
        expect=200,
    )
    await system.knows(saved)
    async with session.post(system.ingest_url(saved), json={"name": "Ann"}) as r:
        assert r.status == 202
        text = await r.text()
        assert text.startswith('<ok id="') and text.endswith('">Ann</ok>')


async def test_structure_views_replace_and_remap(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector = await api.create_connector("shapes")
    cid = connector["id"]
    missing = await api.call("GET", f"/api/v1/connectors/{cid}/structure", expect=404)
    assert missing["error"]["code"] == "no_structure"
    await system.knows(connector)
    await _send(
        session,
        system.ingest_url(connector),
        json={"customer": {"email": "a@b.c", "phone": "+14155550100"}},
    )
    learned = await wait_for(
        lambda: api.found(f"/api/v1/connectors/{cid}/structure"), what="structure"
    )
    fields = {f["path"]: f for f in learned["fields"]}
    assert fields["body.customer.email"]["example"] == "a@b.c"
    assert learned["schema"]["$schema"].endswith("2020-12/schema")
    assert learned["sample"]["body"]["customer"]["phone"] == "+14155550100"

    config = {
        "steps": [
            {
                "type": "http",
                "id": "h",
                "url": "https://example.com/x",
                "body": "{{ body.customer.email }} {{ body.customer.phone }}",
            }
        ]
    }
    await api.call("PUT", f"/api/v1/connectors/{cid}", {"version": 1, "config": config}, expect=200)
    replaced = await api.call(
        "PUT",
        f"/api/v1/connectors/{cid}/structure",
        {"sample": {"body": {"customer": {"email": "x@y.z"}}, "custom_variables": {}}},
        expect=200,
    )
    assert [w["attribute"] for w in replaced["warnings"]] == ["body.customer.phone"]
    assert replaced["warnings"][0]["path"] == "$.steps[0].body"

    events = await wait_for(lambda: _items(api, cid), what="the first event in the log")
    remapped = await api.call(
        "POST", f"/api/v1/connectors/{cid}/structure/from-event/{events[0]['event_id']}", expect=200
    )
    assert remapped["warnings"] == []
    assert remapped["from_event"] == events[0]["event_id"]


async def _items(api: Api, cid: str) -> list[dict[str, Any]]:
    listing = await api.call("GET", f"/api/v1/connectors/{cid}/events")
    items: list[dict[str, Any]] = listing["items"]
    return items


async def test_attribute_listing_has_all_four_kinds(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    config = {
        "steps": [
            {
                "type": "formatter",
                "id": "up",
                "output": "shout",
                "op": "text.upper",
                "input": "{{ custom_variables.value }}",
            },
            {"type": "http", "id": "crm", "url": "https://example.com/x"},
        ]
    }
    connector = await api.create_connector("attrs", config)
    await system.knows(connector)
    await _send(session, system.ingest_url(connector) + "?value=day1", json={"a": {"b": 1}})
    cid = connector["id"]
    await wait_for(lambda: api.found(f"/api/v1/connectors/{cid}/structure"), what="structure")
    listing = await api.call("GET", f"/api/v1/connectors/{cid}/attributes", expect=200)
    event_paths = {a["path"] for a in listing["event"]}
    assert {"body.a.b", "custom_variables.value", "headers", "method"} <= event_paths
    assert {a["path"] for a in listing["system"]} >= {"system.email", "system.current_time"}
    assert {a["path"] for a in listing["formatter"]} == {
        "formatter.shout",
        "formatter.crm.status",
        "formatter.crm.body",
    }
    assert isinstance(listing["subscriber"], list)


async def test_stats_reset_counts_only_later_events(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector, url = await system.ready_connector(api, "counting")
    cid = connector["id"]
    for _ in range(3):
        await _send(session, url, json={"n": 1})
    await wait_for(lambda: _count(api, cid, 3), what="three events counted")
    reset = await api.call("POST", f"/api/v1/connectors/{cid}/stats/reset", expect=200)
    assert (reset["received"], reset["succeeded"]) == (0, 0) and reset["since"]
    await _send(session, url, json={"n": 2})
    stats = await wait_for(lambda: _count(api, cid, 1), what="one event after reset")
    assert stats["since"] == reset["since"]


async def _count(api: Api, cid: str, n: int) -> dict[str, Any] | None:
    stats = await _stats(api, cid)
    return stats if stats["received"] == n and stats["succeeded"] == n else None


async def test_replay_against_a_chosen_version(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector = await api.create_connector("replays")
    await system.knows(connector)
    await _send(session, system.ingest_url(connector), json={"n": 1})
    cid = connector["id"]
    first = (await wait_for(lambda: _items(api, cid), what="first event"))[0]
    bad = await api.call(
        "POST",
        f"/api/v1/connectors/{cid}/events/{first['event_id']}/replay",
        {"version": 99},
        expect=422,
    )
    assert bad["error"]["code"] == "invalid_version"
    replay = await api.call(
        "POST",
        f"/api/v1/connectors/{cid}/events/{first['event_id']}/replay",
        {"version": 1},
        expect=202,
    )

    async def replayed() -> dict[str, Any] | None:
        detail = await api.call("GET", f"/api/v1/connectors/{cid}/events/{replay['event_id']}")
        return detail if detail.get("status") == "succeeded" else None

    detail = await wait_for(replayed, what="the replay to be logged")
    assert detail["replay_of"] == first["event_id"]
    assert detail["event"]["body"] == {"n": 1}


async def test_dry_run_has_no_side_effects(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    from tests.support.system import Receiver

    receiver = await Receiver().start()
    try:
        connector = await api.create_connector("dry")
        await system.knows(connector)
        await _send(session, system.ingest_url(connector) + "?value=day2", json={"name": "Ann"})
        cid = connector["id"]
        first = (await wait_for(lambda: _items(api, cid), what="first event"))[0]
        trial = {
            "steps": [
                {
                    "type": "filter",
                    "id": "is-day2",
                    "when": {
                        "conditions": [
                            {"attribute": "custom_variables.value", "op": "equals", "value": "day2"}
                        ]
                    },
                },
                {
                    "type": "formatter",
                    "id": "shout",
                    "output": "loud",
                    "op": "text.upper",
                    "input": "{{ body.name }}",
                },
                {
                    "type": "http",
                    "id": "send",
                    "url": receiver.url + "/x",
                    "body": "hello {{ formatter.loud }}",
                },
            ]
        }
        result = await api.call(
            "POST",
            f"/api/v1/connectors/{cid}/events/{first['event_id']}/dry-run",
            {"config": trial},
            expect=200,
        )
        steps = {s["step_id"]: s for s in result["execution"]}
        assert steps["is-day2"]["status"] == "succeeded"
        assert steps["shout"]["output"]["value"] == "ANN"
        assert steps["send"]["status"] == "skipped"
        assert steps["send"]["output"]["would_send"]["body"] == "hello ANN"
        assert receiver.calls == []
        stats = await _stats(api, cid)
        assert stats["received"] == 1
    finally:
        await receiver.stop()
