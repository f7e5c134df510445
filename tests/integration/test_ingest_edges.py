"""Ingest at its edges: the broker unreachable (503, then recovery), rate limits (429),
idempotency keys (duplicates acknowledged, stored once)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import msgspec
import pytest

from libs.infra.settings import Settings
from libs.local import embedded
from services.ingest.metrics import IngestMetrics
from tests.support.fixtures import wait_for
from tests.support.system import Api, running

pytestmark = pytest.mark.integration


async def test_broker_down_answers_503_then_recovers(
    settings: Settings, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    port, monitor = embedded.free_port(), embedded.free_port()
    nats = embedded.start_nats(tmp_path / "own", port, monitor)
    settings = msgspec.structs.replace(settings, nats_url=nats.url)
    try:
        async with running(settings, ("config", "ingest")) as system:
            api = Api(session, system.apps["config"].url, settings.admin_token)
            _, url = await system.ready_connector(api, "outage")
            async with session.post(url, json={"n": 1}) as r:
                assert r.status == 200
            embedded.stop(nats)
            async with session.post(url, json={"n": 2}) as r:
                assert r.status == 503
                assert (await r.json())["error"]["code"] == "unavailable"
            nats = embedded.start_nats(tmp_path / "own", port, monitor)

            async def stored_again() -> bool:
                async with session.post(url, json={"n": 3}) as r:
                    return r.status == 200

            await wait_for(stored_again, timeout_s=30, what="ingest to store again")
    finally:
        embedded.stop(nats)


async def test_rate_limit_and_idempotency(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    async with running(settings) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector = await api.create_connector(
            "limits", {"rate_limit_per_s": 2, "idempotency_key": "body.order_id"}
        )
        await system.knows(connector)
        url = system.ingest_url(connector)
        statuses = []
        bodies = []
        for _ in range(6):
            async with session.post(url, json={"order_id": "A-1"}) as r:
                statuses.append(r.status)
                bodies.append(await r.json())
        assert statuses.count(429) >= 3
        codes = {b["error"]["code"] for b, s in zip(bodies, statuses, strict=True) if s == 429}
        assert codes == {"rate_limited"}
        ok = [b for b, s in zip(bodies, statuses, strict=True) if s == 200]
        assert ok[0]["status"] == "stored" and ok[1]["status"] == "duplicate"

        async def counted() -> dict[str, int] | None:
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            done = stats["received"] == 1 and stats["duplicates"] == len(ok) - 1
            return stats if done and stats["rejected"] == statuses.count(429) else None

        await wait_for(counted, what="one stored event, the rest duplicates or rejected")


async def test_values_bson_cannot_hold_are_logged_exactly(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """An integer beyond 64 bits and a NUL in a key are accepted and logged as sent (not
    a 400, not a 200 that never shows up).  Header bytes that are not UTF-8 are kept
    (replaced), not a reason to answer 503."""
    async with running(settings) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector, url = await system.ready_connector(api, "edges")
        sent = b'{"n": 18446744073709551616, "k\\u0000ey": -9223372036854775809}'
        async with session.post(url, data=sent, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 200
            big = (await r.json())["event_id"]
        raw_header = "ok \udced\udca0\udc80"  # what aiohttp makes of bytes ED A0 80
        async with session.post(url, json={"n": 1}, headers={"X-Odd": raw_header}) as r:
            assert r.status == 200

        async def logged() -> bool:
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            return bool(stats["succeeded"] == 2 and stats["received"] == 2)

        await wait_for(logged, what="both events logged")
        async with session.get(
            f"{system.apps['config'].url}/api/v1/connectors/{connector['id']}/events/{big}",
            headers=api.headers,
        ) as r:
            text = await r.read()
        detail = json.loads(text)
        assert detail["event"]["body"] == {"n": 2**64, "k\x00ey": -(2**63) - 1}
        assert detail["raw_body"] == {"encoding": "utf-8", "data": sent.decode(), "size": len(sent)}


async def test_a_full_stream_refuses_new_events_with_503(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Bounded storage: a full EVENTS stream refuses the new (503, the sender retries)
    instead of dropping old events, processed or not."""
    settings = msgspec.structs.replace(settings, stream_max_bytes=300_000)
    async with running(settings, ("config", "ingest")) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector, url = await system.ready_connector(api, "full")
        statuses = []
        for n in range(60):  # 60 x ~27 KB on the wire: about 5 times the stream's size
            async with session.post(url, json={"n": n, "pad": "x" * 10_000}) as r:
                statuses.append(r.status)
                if r.status == 503:
                    assert (await r.json())["error"]["code"] == "unavailable"
                    break
        assert statuses[-1] == 503 and set(statuses[:-1]) == {200}, statuses
        assert len(statuses) > 3  # the first events fit

        async def all_logged() -> bool:
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            return bool(stats["received"] == len(statuses) - 1)

        await wait_for(all_logged, what="every accepted event in the log")


async def test_a_flood_of_bad_requests_cannot_fill_the_log_stream(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Rejected-request notices are bounded per connector and second; the rest are only
    counted in the metrics, so every refused request is accounted for once."""
    import time

    async with running(settings, ("config", "ingest")) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector, url = await system.ready_connector(api, "flood")

        async def bad() -> int:
            async with session.post(
                url, data=b"{", headers={"Content-Type": "application/json"}
            ) as r:
                return r.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(bad() for _ in range(300)))
        elapsed = time.monotonic() - started
        assert set(statuses) == {400}
        ingest = next(v for v in system.apps["ingest"].app.values() if isinstance(v, IngestMetrics))
        dropped = int(ingest.notices_dropped._value.get())

        async def counted() -> dict[str, int] | None:
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            return stats if stats["rejected"] + dropped == 300 else None

        stats = await wait_for(counted, what="every refusal noticed or counted as dropped")
        assert stats["rejected"] <= 20 + 20 * elapsed + 1


async def test_metrics_can_leave_the_public_port(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """With HOOKLINE_INGEST_METRICS_PORT set (as in compose and Kubernetes), webhook
    senders reaching the public port cannot read which connectors exist or their traffic."""
    metrics_port = embedded.free_port()
    settings = msgspec.structs.replace(settings, ingest_metrics_port=metrics_port)
    async with running(settings, ("config", "ingest")) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector = await api.create_connector("private metrics")
        await system.knows(connector)
        async with session.post(system.ingest_url(connector), json={"n": 1}) as r:
            assert r.status == 200
        public = system.apps["ingest"].url
        async with session.get(public + "/metrics") as r:
            assert r.status == 404
        async with session.get(public + "/readyz") as r:
            assert r.status == 200  # probes and load balancers still use the public port
        async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            assert r.status == 200
            assert f'hookline_ingest_requests_total{{connector="{connector["id"]}"' in (
                await r.text()
            )
