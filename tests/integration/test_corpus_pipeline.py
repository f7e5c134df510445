"""Every payload of the real-webhook corpus (tests/corpus/) through the whole pipeline:
answered 2xx, logged once with a verdict, its raw bytes and parsed body exact, the
structure learned from it, and dry-run answering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.domain.bodies import parse_request
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PAYLOADS = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".json", ".form"))
PROVIDERS = sorted({p.parent.name for p in PAYLOADS})


def content_type(payload: Path) -> str:
    return "application/json" if payload.suffix == ".json" else "application/x-www-form-urlencoded"


async def exact(session: aiohttp.ClientSession, api: Api, path: str) -> tuple[int, Any]:
    async with session.get(api.base + path, headers=api.headers) as r:
        return r.status, json.loads(await r.read())  # the standard library: exact big ints


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_corpus_round_trips(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession, provider: str
) -> None:
    connector = await api.create_connector(provider)
    await system.knows(connector)
    cid = connector["id"]
    sent: dict[str, Path] = {}
    for payload in (p for p in PAYLOADS if p.parent.name == provider):
        async with session.post(
            system.ingest_url(connector),
            data=payload.read_bytes(),
            headers={"Content-Type": content_type(payload)},
        ) as r:
            assert r.status == 200, (payload.name, await r.text())
            sent[(await r.json())["event_id"]] = payload

    async def all_judged() -> bool:
        _, stats = await exact(session, api, f"/api/v1/connectors/{cid}/stats")
        return bool(stats["succeeded"] + stats["failed"] == len(sent))

    await wait_for(all_judged, what=f"every {provider} event judged")
    _, stats = await exact(session, api, f"/api/v1/connectors/{cid}/stats")
    assert stats["received"] == len(sent)
    for event_id, payload in sent.items():
        _, detail = await exact(session, api, f"/api/v1/connectors/{cid}/events/{event_id}")
        raw = payload.read_bytes()
        assert detail["raw_body"]["data"].encode() == raw, payload.name
        expected = parse_request(content_type(payload), raw)
        assert detail["event"]["body"] == expected, payload.name
        assert json.dumps(detail["event"]["body"]) == json.dumps(expected), payload.name
        assert detail["degraded"] is None
        async with session.post(
            f"{api.base}/api/v1/connectors/{cid}/events/{event_id}/dry-run", headers=api.headers
        ) as r:
            assert r.status == 200, (payload.name, await r.text())
    code, structure = await exact(session, api, f"/api/v1/connectors/{cid}/structure")
    assert code == 200 and structure["fields"], provider
