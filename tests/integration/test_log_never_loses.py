"""The log never loses an accepted event: an entry the database refuses is stored
degraded (raw bytes and the reason), a message its decoder refuses is salvaged from
what it names, and nothing is terminated without an entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import bson
import pytest

from libs.domain import events
from libs.infra.mongo import store as hmongo
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from services.config.context import CTX
from services.config.projector import Projector, degraded, received_doc
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration


def event(event_id: str, body: Any, raw: bytes | None = b"{}") -> events.EventReceived:
    return events.EventReceived(
        event_id=event_id,
        connector_id="c-degraded",
        connector_version=1,
        occurred_at=events.utcnow(),
        correlation_id=event_id,
        request=events.Request(
            method="POST",
            headers={"x-a": "1"},
            query={},
            source_ip="127.0.0.1",
            content_type="application/json",
            size=len(raw or b""),
        ),
        body=body,
        custom_variables={},
        raw=raw,
    )


@dataclass
class Delivered:
    """A delivered message as the projector sees it. A real one cannot carry this test's
    17 MB entry: the broker's messages stop at 8 MB, the database's documents at 16."""

    data: bytes
    subject: str = "hookline.events.received.c-degraded"
    calls: list[str] = field(default_factory=list)

    @dataclass
    class Meta:
        num_delivered: int = 2
        timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    metadata: Meta = field(default_factory=Meta)

    async def ack(self) -> None:
        self.calls.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.calls.append("nak")

    async def term(self) -> None:
        self.calls.append("term")


async def test_an_entry_too_large_to_store_is_stored_degraded(store: hmongo.Store) -> None:
    big = event("e-big", {"text": "x" * 17_000_000})
    small = event("e-small", {"n": 2**70})
    msgs = [Delivered(events.encode(big)), Delivered(events.encode(small))]
    await Projector(store).on_received(msgs)  # type: ignore[arg-type]
    assert [m.calls for m in msgs] == [["ack"], ["ack"]]
    entry = await store.get_event("c-degraded", "e-big")
    assert entry is not None and entry["status"] == "received"
    assert "too large" in entry["degraded"] and len(entry["degraded"]) <= 500
    assert entry["raw"] == b"{}"
    assert "body" not in entry and entry["request"]["headers"] == {"x-a": "1"}
    whole = await store.get_event("c-degraded", "e-small")
    assert whole is not None and whole["body"] == {"n": 2**70} and whole.get("degraded") is None
    assert (await store.get_stats("c-degraded"))["received"] == 2


def test_degraded_entries_fit_the_database() -> None:
    doc = received_doc(event("e", {"x": "y" * 20_000_000}, raw=b"r" * 20_000_000))
    doc["execution"] = [{"step_id": "s", "type": "http", "status": "failed", "output": "z" * 9}]
    first, second = degraded(doc, "too large", 1), degraded(doc, "too large", 2)
    assert "body" not in first and first["execution"][0].get("output") is None
    assert len(bson.encode(second)) < 2_000 and second["degraded"] == "too large"
    assert second["request"] == {
        "method": "POST",
        "size": 20_000_000,
        "content_type": "application/json",
    }


async def test_an_undecodable_message_naming_an_event_is_salvaged(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    """A received message of another contract version (a field of another type): its
    event still appears in the log, saying why it is degraded."""
    connector = await api.create_connector("salvage")
    cid = connector["id"]
    message = json.loads(events.encode(event("e-odd", {"n": 1})))
    message |= {"connector_id": cid, "request": {"method": "POST", "size": "not a number"}}
    js = system.apps["config"].app[CTX].js
    settings = system.settings
    await js.publish(
        subjects.received(settings.prefix, cid),
        json.dumps(message).encode(),
        headers=natsio.msg_id_header("e-odd"),
    )

    async def salvaged() -> Any:
        return await api.found(f"/api/v1/connectors/{cid}/events/e-odd")

    entry = await wait_for(salvaged, what="the salvaged entry")
    assert entry["degraded"].startswith("undecodable message")

    async def counted() -> bool:  # the stats are written after the entry
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return bool(stats["received"] == 1)

    assert await wait_for(counted, what="the salvaged event counted as received")
