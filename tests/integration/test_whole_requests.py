"""The cases that broke "every real request kept whole", one by one, through the real
pipeline: bodies in pieces, chunked, compressed; 64-bit and larger integers through
structure, replay and dry-run; NUL keys; deep nesting; bodies with no or odd types."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import zlib
from typing import Any

import aiohttp
import pytest

from libs.domain.jsonvalue import BOUNDS
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration

SHOPIFY_ORDER = {  # the shape of Shopify's documented orders/create payload
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "created_at": "2021-12-31T19:00:00-05:00",
    "customer": {"id": 115310627314723954, "email": "jon@example.com", "phone": None},
    "line_items": [
        {"id": 866550311766439020, "product_id": 788032119674292922, "price": "199.00"},
        {"id": 141249953214522974, "product_id": 632910392, "price": "0.50"},
    ],
    "total_price": "199.50",
    "processed_at_ms": 1640995200000,
    "big": 123456789012345678901234567890,
}


async def raw_request(url: str, head: list[str], pieces: list[bytes], pause_s: float) -> Any:
    """Write a request by hand, its body in separate writes with a pause between."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    reader, writer = await asyncio.open_connection(name, int(port))
    writer.write(
        ("\r\n".join([f"POST /{rest} HTTP/1.1", f"Host: {host}", *head]) + "\r\n\r\n").encode()
    )
    for piece in pieces:
        await writer.drain()
        await asyncio.sleep(pause_s)  # the sender's network, not a wait for a result
        writer.write(piece)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    status, _, rest_ = data.partition(b"\r\n")
    return int(status.split()[1]), json.loads(rest_.partition(b"\r\n\r\n")[2])


def segments(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def chunked(body: bytes, size: int) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in segments(body, size)] + [b"0\r\n\r\n"]


@pytest.fixture
async def target(system: InProcessSystem, api: Api) -> tuple[str, dict[str, Any]]:
    connector = await api.create_connector("whole")
    await system.knows(connector)
    return system.ingest_url(connector), connector


async def logged(api: Api, connector: dict[str, Any], event_id: str) -> dict[str, Any]:
    path = f"/api/v1/connectors/{connector['id']}/events/{event_id}"

    async def judged() -> dict[str, Any] | None:
        async with api.session.get(api.base + path, headers=api.headers) as r:
            if r.status != 200:
                return None
            detail: dict[str, Any] = json.loads(await r.read())  # exact big integers
            return detail if detail["status"] != "received" else None

    return await wait_for(judged, what=f"event {event_id} in the log with its verdict")


BIG = json.dumps({"items": [{"id": 2**63 + i, "text": "é" * 100} for i in range(500)]}).encode()


@pytest.mark.parametrize(
    ("how", "head", "pieces"),
    [
        ("30KB, pause, rest", [f"Content-Length: {len(BIG)}"], [BIG[:30_000], BIG[30_000:]]),
        ("1KB segments", [f"Content-Length: {len(BIG)}"], segments(BIG, 1024)),
        ("chunked", ["Transfer-Encoding: chunked"], chunked(BIG, 7_000)),
    ],
)
async def test_json_in_pieces_is_kept_whole(
    target: tuple[str, dict[str, Any]], api: Api, how: str, head: list[str], pieces: list[bytes]
) -> None:
    assert len(BIG) > 113_000
    url, connector = target
    head = ["Content-Type: application/json", "Connection: close", *head]
    pause = 0.05 if len(pieces) < 5 else 0.001
    status, answer = await raw_request(url, head, pieces, pause)
    assert status == 200, (how, answer)
    detail = await logged(api, connector, answer["event_id"])
    assert detail["raw_body"]["data"].encode() == BIG
    assert detail["event"]["body"] == json.loads(BIG)


@pytest.mark.parametrize(
    ("content_type", "body", "parsed"),
    [
        ("text/plain", b"word " * 20_000, "word " * 20_000),
        ("application/x-www-form-urlencoded", b"&".join([b"k=v"] * 9_000), {"k": ["v"] * 9_000}),
    ],
)
async def test_text_and_forms_in_pieces_are_not_truncated(
    target: tuple[str, dict[str, Any]], api: Api, content_type: str, body: bytes, parsed: Any
) -> None:
    url, connector = target
    head = [f"Content-Type: {content_type}", "Connection: close", "Transfer-Encoding: chunked"]
    status, answer = await raw_request(url, head, chunked(body, 3_000), 0.002)
    assert status == 200, answer
    detail = await logged(api, connector, answer["event_id"])
    assert detail["event"]["body"] == parsed and detail["raw_body"]["size"] == len(body)


async def test_compressed_bodies_and_their_bound(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector, url = await system.ready_connector(api, "gz", {"max_body_bytes": 100_000})
    body = json.dumps({"n": 2**64, "s": "x" * 50_000}).encode()
    for encoding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        async with session.post(
            url,
            data=packed,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        ) as r:
            assert r.status == 200, await r.text()
            detail = await logged(api, connector, (await r.json())["event_id"])
        assert detail["raw_body"]["data"].encode() == body  # the decoded entity is the record
        assert detail["event"]["body"]["n"] == 2**64
    bomb = gzip.compress(b"0" * 50_000_000)  # 50 MB from ~50 KB on the wire
    async with session.post(
        url, data=bomb, headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    ) as r:
        assert r.status == 413 and (await r.json())["error"]["code"] == "payload_too_large"
    async with session.post(
        url, data=b"not gzip", headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_body"


async def test_64_bit_ids_through_structure_replay_and_dry_run(
    target: tuple[str, dict[str, Any]], api: Api, session: aiohttp.ClientSession
) -> None:
    url, connector = target
    cid = connector["id"]
    async with session.post(url, json=SHOPIFY_ORDER) as r:
        assert r.status == 200
        event_id = (await r.json())["event_id"]
    detail = await logged(api, connector, event_id)
    assert detail["event"]["body"] == SHOPIFY_ORDER

    async def learned() -> Any:
        async with session.get(
            f"{api.base}/api/v1/connectors/{cid}/structure", headers=api.headers
        ) as r:
            return json.loads(await r.read()) if r.status == 200 else None

    structure = await wait_for(learned, what="the structure learned from the order")
    assert structure["sample"]["body"]["id"] == 820982911946154508
    assert structure["sample"]["body"]["big"] == SHOPIFY_ORDER["big"]
    examples = {f["path"]: f.get("example") for f in structure["fields"]}
    assert examples["body.customer.id"] == 115310627314723954
    base = f"{api.base}/api/v1/connectors/{cid}"
    async with session.post(f"{base}/structure/from-event/{event_id}", headers=api.headers) as r:
        assert r.status == 200, await r.text()
    async with session.post(f"{base}/events/{event_id}/dry-run", headers=api.headers) as r:
        assert r.status == 200, await r.text()
    async with session.post(f"{base}/events/{event_id}/replay", headers=api.headers) as r:
        assert r.status == 202, await r.text()
        replayed = await logged(api, connector, (await r.json())["event_id"])
    assert replayed["event"]["body"] == SHOPIFY_ORDER and replayed["replay_of"] == event_id


async def test_nul_dollar_and_dot_keys_are_logged_and_counted(
    target: tuple[str, dict[str, Any]], api: Api, session: aiohttp.ClientSession
) -> None:
    url, connector = target
    sent = {"k\u0000ey": "v", "$set": {"a.b": 1}, "": [None], "%": "%25"}
    async with session.post(url, json=sent, params={"a.b": "1", "$x": "2"}) as r:
        assert r.status == 200
        event_id = (await r.json())["event_id"]
    detail = await logged(api, connector, event_id)
    assert detail["event"] == {"body": sent, "custom_variables": {"a.b": "1", "$x": "2"}}
    stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
    assert stats["received"] == 1


@pytest.mark.parametrize("depth", [BOUNDS.depth + 1, 1_000, 200_000])
async def test_deep_nesting_is_a_clear_400(
    target: tuple[str, dict[str, Any]], session: aiohttp.ClientSession, depth: int
) -> None:
    url, _ = target
    body = b"[" * depth + b"]" * depth
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["code"] == "too_deep" and str(BOUNDS.depth) in error["message"]


@pytest.mark.parametrize(
    ("headers", "body", "parsed"),
    [
        ({}, b'{"no": "content type"}', {"no": "content type"}),
        ({"Content-Type": "application/octet-stream"}, b"\x00\xff\x10", None),
        ({"Content-Type": "application/json"}, b'\xef\xbb\xbf{"bom": true}', {"bom": True}),
        ({"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n", None),
    ],
)
async def test_any_content_type_is_stored(
    target: tuple[str, dict[str, Any]],
    api: Api,
    headers: dict[str, str],
    body: bytes,
    parsed: Any,
) -> None:
    url, connector = target
    head = [f"{k}: {v}" for k, v in headers.items()]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    status, answer = await raw_request(url, head, [body], 0)
    assert status == 200, answer
    detail = await logged(api, connector, answer["event_id"])
    assert detail["event"]["body"] == parsed
    raw = detail["raw_body"]
    if raw["encoding"] == "base64":
        assert base64.b64decode(raw["data"]) == body
    else:
        assert raw["data"].encode() == body


async def test_too_large_counts_bytes_as_they_arrive(system: InProcessSystem, api: Api) -> None:
    _, url = await system.ready_connector(api, "small", {"max_body_bytes": 10_000})
    head = ["Content-Type: text/plain", "Connection: close", "Transfer-Encoding: chunked"]
    status, answer = await raw_request(url, head, chunked(b"x" * 20_000, 1_000), 0)
    assert status == 413 and answer["error"]["code"] == "payload_too_large"


async def test_credential_headers_are_not_kept(
    target: tuple[str, dict[str, Any]], api: Api, session: aiohttp.ClientSession
) -> None:
    url, connector = target
    sent = {
        "Authorization": "Bearer a",
        "X-Api-Key": "k1",
        "X-Auth-Token": "t1",
        "X-Client-Secret": "s1",
        "X-Hub-Signature-256": "sha256=abc",
        "X-Shop": "shop-1",
    }
    async with session.post(url, json={"a": 1}, headers=sent) as r:
        event_id = (await r.json())["event_id"]
    headers = (await logged(api, connector, event_id))["request"]["headers"]
    for name in ("authorization", "x-api-key", "x-auth-token", "x-client-secret"):
        assert headers[name] == "[redacted]", name
    assert headers["x-hub-signature-256"] == "sha256=abc" and headers["x-shop"] == "shop-1"
