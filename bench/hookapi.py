"""The config API calls the benchmark needs, and the end-to-end load (events/s)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bench.payload import ORDER, SIGNED_HEADERS, VERIFIED

# A step that cannot fail and needs no network: passes when ``?n=`` is in the URL.
FILTER_STEP: dict[str, Any] = {
    "type": "filter",
    "id": "f1",
    "when": {"conditions": [{"attribute": "custom_variables.n", "op": "exists"}]},
}
_JSON = {"Content-Type": "application/json"}
# Field mapping on: every event creates or updates a contact (a distinct mobile per event,
# derived from ?n=, so the writes are spread like real traffic, not one hot document).
MAPPING: dict[str, Any] = {
    "mobile": '{{ "+35191%07d" | format(custom_variables.n | int) }}',
    "email": "body.customer.email",
    "name": "body.customer.name",
    "channel": "bench-web",
}
# The subscriber attribute the mapper phase maps (the visit number: known contacts
# either bring the value they hold already or a new one).
VISIT_ATTRIBUTE: dict[str, Any] = {"name": "visit", "type": "number"}
BENCH_CHANNEL: dict[str, Any] = {
    "type": "http",
    "id": "bench-web",
    "base_url": "https://example.com",
}


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as response:
            data = await response.json(content_type=None)
            if response.status >= 300:
                raise RuntimeError(f"{method} {path} → {response.status}: {data}")
            return data

    async def create_connector(
        self, name: str, steps: list[dict[str, Any]] | None = None, **config: Any
    ) -> dict[str, Any]:
        created: dict[str, Any] = await self._call("POST", "/connectors", {"name": name})
        if steps or config:
            saved = await self._call(
                "PUT",
                f"/connectors/{created['id']}",
                {"version": created["version"], "config": {"steps": steps or [], **config}},
            )
            created.update(saved)
        return created

    async def create_channel(self, channel: dict[str, Any]) -> None:
        await self._call("POST", "/channels", channel)

    async def create_attribute(self, attribute: dict[str, Any]) -> None:
        await self._call("POST", "/attributes", attribute)

    async def stats(self, connector_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("GET", f"/connectors/{connector_id}/stats")
        return data

    async def last_event(self, connector_id: str) -> dict[str, Any] | None:
        page = await self._call("GET", f"/connectors/{connector_id}/events?limit=1")
        if not page["items"]:
            return None
        detail: dict[str, Any] = await self._call(
            "GET", f"/connectors/{connector_id}/events/{page['items'][0]['event_id']}"
        )
        return detail


async def wait_stable(api: Api, connector_id: str, timeout_s: float) -> dict[str, Any]:
    """Wait until every received event of a connector has an outcome (or the deadline)."""
    deadline = time.monotonic() + timeout_s
    stats = await api.stats(connector_id)
    while time.monotonic() < deadline:
        if stats["received"] and stats["succeeded"] + stats["failed"] >= stats["received"]:
            break
        await asyncio.sleep(0.5)
        stats = await api.stats(connector_id)
    return stats


@dataclass(frozen=True)
class E2EResult:
    events: int
    accepted: int
    rejected: int
    send_s: float
    ingest_per_s: float
    logged: int
    complete: bool
    elapsed_s: float
    events_per_s: float
    sample_status: str | None
    sample_steps: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def send_all(
    session: aiohttp.ClientSession,
    url: str,
    count: int,
    concurrency: int,
    deadline: float,
    *,
    first_n: int = 0,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, int]:
    """POST ``count`` events (``?n=first_n`` and up, then ``query``) with ``concurrency``
    workers; stops early at ``deadline``."""
    next_index = 0
    ok = bad = 0
    headers = _JSON | (headers or {})

    async def worker() -> None:
        nonlocal next_index, ok, bad
        while next_index < count and time.monotonic() < deadline:
            n = first_n + next_index
            next_index += 1
            try:
                async with session.post(f"{url}?n={n}{query}", data=ORDER, headers=headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        ok += 1
                    else:
                        bad += 1
            except (aiohttp.ClientError, TimeoutError):
                bad += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, bad


async def end_to_end(
    api: Api,
    count: int,
    *,
    concurrency: int = 50,
    send_timeout_s: float = 300,
    log_timeout_s: float = 300,
    poll_s: float = 0.1,
    mapping: dict[str, Any] | None = None,
) -> E2EResult:
    """Events/s from the first send until the last event is in the log (stats); the
    connector checks a GitHub signature on every event."""
    extra = {"mapping": mapping} if mapping else {}
    connector = await api.create_connector(
        "bench-e2e", [FILTER_STEP], verification=VERIFIED, **extra
    )
    cid = connector["id"]
    timeout = aiohttp.ClientTimeout(total=30)
    connector_pool = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector_pool, timeout=timeout) as sender:
        t0 = time.monotonic()
        accepted, rejected = await send_all(
            sender,
            connector["url"],
            count,
            concurrency,
            t0 + send_timeout_s,
            headers=SIGNED_HEADERS,
        )
        sent_at = time.monotonic()
    deadline = time.monotonic() + log_timeout_s
    logged = 0
    done_at = time.monotonic()
    while time.monotonic() < deadline:
        stats = await api.stats(cid)
        done_at = time.monotonic()
        logged = int(stats["succeeded"]) + int(stats["failed"])
        if logged >= accepted:
            break
        await asyncio.sleep(poll_s)
    elapsed = done_at - t0
    sample = await api.last_event(cid)
    return E2EResult(
        events=count,
        accepted=accepted,
        rejected=rejected,
        send_s=round(sent_at - t0, 3),
        ingest_per_s=round(accepted / max(sent_at - t0, 1e-9), 1),
        logged=logged,
        complete=logged >= accepted,
        elapsed_s=round(elapsed, 3),
        events_per_s=round(logged / max(elapsed, 1e-9), 1),
        sample_status=sample.get("status") if sample else None,
        sample_steps=[
            f"{s.get('step_id')}:{s.get('status')}" for s in (sample.get("execution") or [])
        ]
        if sample
        else [],
    )
