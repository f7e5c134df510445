"""Every real request kept whole, as a property through the real pipeline.

Hypothesis generates requests: JSON documents at the edges (integers of any size,
floats, keys with ``$``, ``.``, NUL, empty or any Unicode, top-level scalars and
arrays, nesting around the depth bound), arbitrary bytes under arbitrary content
types, arbitrary extra headers, and network timings: the body split into segments
with pauses, chunked transfer encoding in random chunk sizes, gzip.  Each request is
written by hand on a raw socket so that the segments are really separate writes.

The invariant, for every generated request:
- 2xx ⇒ the event is in the log exactly once with a verdict; its detail, replay and
  dry-run answer 2xx; the raw bytes round-trip byte-exact, the parsed JSON body
  value-exact (types included: ``1`` is not ``1.0`` is not ``true``), and an HTTP
  action that sends ``{{ body | json }}`` sends the same value;
- otherwise a 4xx with a JSON error; never a 5xx.

``HOOKLINE_PROPERTY_EXAMPLES`` sets the number of generated requests (default 60 so
that ``make test`` stays fast; the long run uses a few thousand).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.domain.jsonvalue import BOUNDS
from libs.infra.settings import Settings
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem, Receiver
from tests.support.values import same_json

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("HOOKLINE_PROPERTY_EXAMPLES", "60"))
T = TypeVar("T")

# ------------------------------------------------------------------ strategies

edge_keys = st.one_of(
    st.sampled_from(
        ["", "$", "$set", ".", "a.b", "\x00", "k\x00ey", "%", "%25", "%int", "é", "🙂"]
    ),
    st.text(max_size=12),
)
edge_ints = st.one_of(
    st.integers(),  # hypothesis reaches far beyond 64 bits
    st.sampled_from(
        [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30]
    ),
    st.integers(min_value=-(10**60), max_value=10**60),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    edge_ints,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(edge_keys, inner, max_size=5)
    ),
    max_leaves=30,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth - 1):
        value = [value] if i % 2 else {"d": value}
    return value


def deep_text(depth: int) -> bytes:
    """A JSON text nested ``depth`` deep, too deep to build as a Python value here."""
    return b'{"d":[' * (depth // 2) + b"1" + b"]}" * (depth // 2)


deep = st.sampled_from([BOUNDS.depth, BOUNDS.depth + 1, BOUNDS.depth + 2]).map(nested)


@dataclass
class Sent:
    content_type: str | None
    body: bytes
    value: Any = None  # the JSON value, when the body is one
    is_json: bool = False

    def depth(self) -> int:
        """How deep the JSON body nests (brackets outside strings)."""
        level = top = 0
        in_string = escaped = False
        for char in self.body.decode("utf-8-sig"):
            if in_string:
                escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
            elif char == '"':
                in_string = True
            elif char in "[{":
                level += 1
                top = max(top, level)
            elif char in "]}":
                level -= 1
        return top


very_deep = st.sampled_from([500, 2_000, 100_000]).map(
    lambda d: Sent("application/json", deep_text(d), None, True)
)
json_bodies = (
    st.one_of(json_values, deep)
    .flatmap(
        lambda v: st.tuples(
            st.just(v),
            st.sampled_from(["application/json", "application/vnd.api+json", None]),
            st.booleans(),  # a UTF-8 byte order mark first
            st.booleans(),  # pretty-printed
        )
    )
    .map(
        lambda t: Sent(
            t[1],
            (b"\xef\xbb\xbf" if t[2] else b"")
            + json.dumps(t[0], ensure_ascii=not t[3], indent=2 if t[3] else None).encode(),
            t[0],
            True,
        )
    )
)
other_bodies = st.builds(
    Sent,
    st.sampled_from(
        [
            "application/octet-stream",
            "image/png",
            "text/plain",
            "text/xml; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/protobuf",
            None,
        ]
    ),
    st.binary(max_size=3000),
)
big_json = st.integers(min_value=1, max_value=400).map(
    lambda n: Sent(
        "application/json",
        json.dumps({"items": [{"id": 2**63 + i, "name": "x" * 300} for i in range(n)]}).encode(),
        {"items": [{"id": 2**63 + i, "name": "x" * 300} for i in range(n)]},
        True,
    )
)
header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.$%!#&'*+^`|~", min_size=1, max_size=20
).filter(
    lambda n: (
        n.lower()
        not in {"content-length", "transfer-encoding", "content-encoding", "host", "connection"}
        and not n.lower().startswith(("content-", "x-correlation", "expect"))
    )
)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@dataclass
class Delivery:
    mode: str  # "segments", "chunked", "gzip"
    cuts: list[int] = field(default_factory=list)  # relative positions of the cuts, 0..1000
    pauses_ms: list[int] = field(default_factory=list)


deliveries = st.builds(
    Delivery,
    st.sampled_from(["segments", "chunked", "gzip"]),
    st.lists(st.integers(0, 1000), max_size=6),
    st.lists(st.integers(0, 15), max_size=6),
)
requests = st.tuples(
    st.one_of(json_bodies, json_bodies, other_bodies, big_json, very_deep),
    deliveries,
    st.dictionaries(header_names, header_values, max_size=5),
    st.sampled_from(["POST", "PUT", "PATCH"]),
)

# ------------------------------------------------------------------ the wire


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({len(data) * c // 1000 for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


async def send_raw(
    url: str, method: str, sent: Sent, delivery: Delivery, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One request on its own connection, the body written in separate pieces."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = gzip.compress(sent.body) if delivery.mode == "gzip" else sent.body
    head = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if sent.content_type is not None:
        head.append(f"Content-Type: {sent.content_type}")
    if delivery.mode == "gzip":
        head.append("Content-Encoding: gzip")
    chunks = pieces(body, delivery.cuts)
    if delivery.mode == "chunked":
        head.append("Transfer-Encoding: chunked")
        frames = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c] + [b"0\r\n\r\n"]
    else:
        head.append(f"Content-Length: {len(body)}")
        frames = chunks
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    for i, frame in enumerate(frames):
        await writer.drain()
        pause = delivery.pauses_ms[i % len(delivery.pauses_ms)] if delivery.pauses_ms else 0
        if pause:
            await asyncio.sleep(pause / 1000)  # network timing, not a wait for a result
        writer.write(frame)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


# ------------------------------------------------------------------ the system


class Loop:
    """An event loop in a thread: hypothesis drives a sync test, the system is async."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 90) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Pipeline:
    loop: Loop
    system: InProcessSystem
    session: aiohttp.ClientSession
    api: Api
    receiver: Receiver
    connector: dict[str, Any]
    accepted: list[str] = field(default_factory=list)
    expected: dict[str, Any] = field(default_factory=dict)  # event id -> JSON value sent

    @property
    def url(self) -> str:
        return self.system.ingest_url(self.connector)

    def path(self, tail: str = "") -> str:
        return f"/api/v1/connectors/{self.connector['id']}{tail}"

    async def raw_get(self, path: str) -> tuple[int, Any]:
        """A config API answer decoded by the standard library: exact big integers."""
        async with self.session.get(self.api.base + path, headers=self.api.headers) as r:
            return r.status, json.loads(await r.read())


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    # Room in the streams for the long run (HOOKLINE_PROPERTY_EXAMPLES in the thousands).
    settings = msgspec.structs.replace(
        settings, allow_private_targets=True, stream_max_bytes=512 * 1024**2
    )
    loop = Loop()

    async def start() -> Pipeline:
        system = await InProcessSystem(settings).start()
        session = aiohttp.ClientSession()
        api = Api(session, system.apps["config"].url, settings.admin_token)
        receiver = await Receiver().start()
        step = {"type": "http", "id": "echo", "url": receiver.url + "/echo/{{ event_id }}"}
        step["body"] = "{{ body | json }}"
        connector = await api.create_connector("exact", {"steps": [step]})
        await system.knows(connector)
        return Pipeline(loop, system, session, api, receiver, connector)

    running = loop.run(start())
    yield running

    async def stop() -> None:
        await running.session.close()
        await running.receiver.stop()
        await running.system.stop()

    loop.run(stop())
    loop.close()


async def check_request(
    p: Pipeline, method: str, sent: Sent, delivery: Delivery, headers: dict[str, str]
) -> None:
    status, payload = await send_raw(p.url, method, sent, delivery, headers)
    assert status < 500, (status, payload)
    answer = json.loads(payload)
    if status >= 300:
        assert 400 <= status < 500 and answer["error"]["code"], (status, answer)
        if not sent.is_json:
            return
        if answer["error"]["code"] == "too_deep" and sent.depth() > BOUNDS.depth:
            return
        raise AssertionError(f"a valid JSON body was refused: {answer}")
    event_id = answer["event_id"]
    p.accepted.append(event_id)

    async def judged() -> Any:
        code, detail = await p.raw_get(p.path(f"/events/{event_id}"))
        return detail if code == 200 and detail["status"] != "received" else None

    detail = await wait_for(judged, timeout_s=30, what=f"the verdict on {event_id}")
    raw = detail["raw_body"]
    got = raw["data"].encode() if raw["encoding"] == "utf-8" else base64.b64decode(raw["data"])
    assert got == sent.body, "the raw bytes are not the ones sent"
    assert detail["degraded"] is None, detail["degraded"]
    assert detail["execution"][0]["status"] == "succeeded", detail["execution"]
    if sent.is_json and sent.content_type is None and sent.depth() > BOUNDS.depth:
        # No content type and no JSON Hookline takes: kept as the text it is.
        assert detail["event"]["body"] == sent.body.decode("utf-8")
    elif sent.is_json:
        assert same_json(detail["event"]["body"], sent.value), (detail["event"]["body"], sent.value)
        p.expected[event_id] = sent.value
    async with p.session.post(
        p.api.base + p.path(f"/events/{event_id}/dry-run"), headers=p.api.headers
    ) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["status"] in ("succeeded", "failed", "filtered")
    async with p.session.post(
        p.api.base + p.path(f"/events/{event_id}/replay"), headers=p.api.headers
    ) as r:
        assert r.status == 202, await r.text()
        replay_id = (await r.json())["event_id"]
    p.accepted.append(replay_id)
    if event_id in p.expected:
        p.expected[replay_id] = sent.value


@pytest.mark.timeout(max(120, EXAMPLES // 2))  # the long run takes ~0.1 s a request
def test_every_accepted_request_is_logged_whole(pipeline: Pipeline) -> None:
    p = pipeline

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("HOOKLINE_PROPERTY_EXAMPLES") is None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests)
    def one(request: tuple[Sent, Delivery, dict[str, str], str]) -> None:
        sent, delivery, headers, method = request
        p.loop.run(check_request(p, method, sent, delivery, headers))

    one()
    assert p.expected, "no JSON body was accepted"

    def echoed() -> dict[str, str] | None:
        calls = {c["path"].rsplit("/", 1)[1]: c["body"] for c in p.receiver.calls}
        return calls if set(p.expected) <= set(calls) else None

    # The HTTP action's {{ body | json }} sends the value that was sent (replays too).
    calls = p.loop.run(wait_for(echoed, timeout_s=60, what="every event's HTTP action"))
    for event_id, value in p.expected.items():
        assert same_json(json.loads(calls[event_id]), value), (calls[event_id], value)

    async def each_once() -> Any:
        _, stats = await p.raw_get(p.path("/stats"))
        return stats if stats["received"] == len(p.accepted) else None

    stats = p.loop.run(wait_for(each_once, timeout_s=60, what="every 2xx event counted once"))
    assert stats["received"] == len(p.accepted)

    async def listed() -> set[str]:
        ids: list[str] = []
        cursor = ""
        while True:
            _, page = await p.raw_get(p.path(f"/events?limit=500{cursor}"))
            # Refused requests are logged too (status rejected): only events count here.
            ids += [e["event_id"] for e in page["items"] if e["status"] != "rejected"]
            if not page["next_before"]:
                return set(ids) if len(ids) == len(set(ids)) else {"duplicate"}
            cursor = f"&before={page['next_before']}"

    assert p.loop.run(listed()) == set(p.accepted)
