"""``python -m bench.logsearch``: the event log's search and listing at a large log, and
what the log costs in disk per million events.

A SecantusDB of its own is filled with one connector's log entries, built by the
projector's own code (``received_doc`` + ``searchable``: terms and ``expire_at``) from
an order webhook whose values vary (order ids unique, 1,000 customers, 1 in 50
failed); then each query runs through ``log_search.newest`` on the real ``Store``,
exactly as ``GET …/events`` does, at a small log (the baseline, same run) and at the
full size.  A query that stays fast has a ratio near 1 however large the log grows.

Sizes: ``BENCH_SEARCH_EVENTS`` (default 200,000; the README's figures are from
1,000,000, about 8 minutes of inserting on two cores) and a baseline of 10,000.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from libs.domain import events, search
from libs.infra.mongo import store as hmongo
from libs.local import embedded
from services.config import log_search
from services.config.projector import received_doc, searchable

BASELINE = 10_000
BATCH = 1000
RATE_PER_S = 50.0  # the log's pace: one entry every 20 ms of "received_at"
RUNS = 5
CONNECTOR = "bench-search"
CUSTOMERS = 1000


def _entry(n: int, t0: datetime) -> dict[str, Any]:
    body = {
        "event": "order.created",
        "order": {
            "id": f"ord_{n:09d}",
            "number": 10_000_000 + n,
            "total": round(10 + (n % 997) * 0.37, 2),
            "currency": "EUR",
            "status": "paid",
            "items": [
                {"sku": f"SKU-{n % 300}", "qty": 1 + n % 3, "price": 39.95},
                {"sku": "MUG-WHT", "qty": 1, "price": 12.5},
            ],
        },
        "customer": {"email": f"customer{n % CUSTOMERS}@example.com", "name": "Ana Silva"},
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    request = events.Request(
        method="POST",
        headers={"Content-Type": "application/json", "X-Shop-Domain": f"shop{n % 7}.example"},
        query={},
        source_ip="203.0.113.7",
        content_type="application/json",
        size=len(raw),
    )
    received = events.EventReceived(
        event_id=f"{n:032x}",
        connector_id=CONNECTOR,
        connector_version=1,
        occurred_at=t0 + timedelta(seconds=n / RATE_PER_S),
        correlation_id=f"{n:032x}",
        request=request,
        body=body,
        custom_variables={},
        raw=raw,
    )
    doc = received_doc(received)
    failed = n % 50 == 7
    doc.update(
        status="failed" if failed else "succeeded",
        outcome_at=received.occurred_at,
        attempts=1,
        error="POST https://crm.example.com/hook answered 500" if failed else None,
        execution=[
            {
                "step_id": "call",
                "type": "http",
                "status": "failed" if failed else "succeeded",
                "duration_ms": 12.5,
                "output": {"status": 500 if failed else 200, "body": {"ok": not failed}},
            }
        ],
    )
    return searchable(doc, 30.0)


async def _fill(store: hmongo.Store, start: int, stop: int, t0: datetime) -> float:
    began = time.perf_counter()
    for low in range(start, stop, BATCH):
        docs = [_entry(n, t0) for n in range(low, min(stop, low + BATCH))]
        await store.events.insert_many(docs, ordered=False)
    return time.perf_counter() - began


def _queries(size: int, t0: datetime) -> dict[str, Callable[[], log_search.Selection]]:
    """What an operator asks, for a log of ``size`` entries."""
    rare = f"ord_{size // 3:09d}"  # one entry, two thirds of the way back

    def cond(name: str, value: str) -> list[search.Term]:
        return search.condition(name, value)

    hour = t0 + timedelta(seconds=size / RATE_PER_S / 2)
    return {
        "newest page (no search)": lambda: log_search.Selection(),
        "status=failed": lambda: log_search.Selection(conditions=[cond("status", "failed")]),
        "body.order.id (1 match)": lambda: log_search.Selection(
            conditions=[cond("body.order.id", rare)]
        ),
        f"body.customer.email (1 in {CUSTOMERS})": lambda: log_search.Selection(
            conditions=[cond("body.customer.email", "customer42@example.com")]
        ),
        "email + headers.x-shop-domain": lambda: log_search.Selection(
            conditions=[
                cond("body.customer.email", "customer42@example.com"),
                cond("headers.x-shop-domain", "shop3.example"),
            ]
        ),
        "status=failed + headers.x-shop-domain": lambda: log_search.Selection(
            conditions=[cond("status", "failed"), cond("headers.x-shop-domain", "shop3.example")]
        ),
        "headers.x-shop-domain + 1 h range": lambda: log_search.Selection(
            conditions=[cond("headers.x-shop-domain", "shop3.example")],
            after=hour,
            before=hour + timedelta(hours=1),
        ),
    }


async def _expected(store: hmongo.Store, size: int, t0: datetime) -> dict[str, int]:
    """What each query must find (up to a page), asked of the entries' own fields, not
    their terms: the search's answers are checked, not only timed."""
    hour = t0 + timedelta(seconds=size / RATE_PER_S / 2)
    base: dict[str, Any] = {"connector_id": CONNECTOR}
    email, shop = "body.customer.email", "request.headers.X-Shop-Domain"
    filters: dict[str, dict[str, Any]] = {
        "newest page (no search)": {},
        "status=failed": {"status": "failed"},
        "body.order.id (1 match)": {"body.order.id": f"ord_{size // 3:09d}"},
        f"body.customer.email (1 in {CUSTOMERS})": {email: "customer42@example.com"},
        "email + headers.x-shop-domain": {email: "customer42@example.com", shop: "shop3.example"},
        "status=failed + headers.x-shop-domain": {"status": "failed", shop: "shop3.example"},
        "headers.x-shop-domain + 1 h range": {
            shop: "shop3.example",
            "received_at": {"$gte": hour, "$lt": hour + timedelta(hours=1)},
        },
    }
    return {
        name: await store.events.count_documents(base | f, limit=50) for name, f in filters.items()
    }


async def _time(fn: Callable[[], Awaitable[Any]]) -> float:
    samples = []
    for _ in range(RUNS):
        began = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


async def _measure(store: hmongo.Store, size: int, t0: datetime) -> dict[str, dict[str, Any]]:
    now = t0 + timedelta(seconds=size / RATE_PER_S + 1)
    counters = {"received": size}
    window = log_search.first_window_s(counters["received"], t0, now)
    out = {}
    expected = await _expected(store, size, t0)
    for name, make in _queries(size, t0).items():
        pages: list[log_search.Page] = []

        async def one(
            make: Callable[[], log_search.Selection] = make,
            pages: list[log_search.Page] = pages,
        ) -> None:
            pages.append(
                await log_search.newest(
                    store,
                    CONNECTOR,
                    make(),
                    floor=t0 - timedelta(seconds=1),
                    now=now,
                    window_s=window,
                    limit=50,
                )
            )

        ms = await _time(one)
        rows = len(pages[-1].rows)
        if rows != expected[name]:
            raise SystemExit(
                f"log search bench: {name} found {rows} rows at {size:,} entries, "
                f"the fields say {expected[name]}"
            )
        out[name] = {"ms": round(ms, 1), "rows": rows}
    return out


def _bytes_under(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def _disk(store: hmongo.Store, data_dir: Path) -> dict[str, float]:
    stats = await store.db.command("collStats", "events")
    on_disk = await asyncio.to_thread(_bytes_under, data_dir)
    count = stats.get("count") or 1
    per_million = 1e6 / count / 1024**2
    return {
        "entries": count,
        "data_mib_per_million": round(stats.get("size", 0) * per_million, 0),
        "index_mib_per_million": round(stats.get("totalIndexSize", 0) * per_million, 0),
        "disk_mib_per_million": round(on_disk * per_million, 0),
        "avg_entry_bytes": round(stats.get("avgObjSize", 0), 0),
    }


async def run(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hookline-search-") as tmp:
        mongo = embedded.start_mongo(Path(tmp))
        try:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.url, tz_aware=True)
            store = hmongo.Store(client, "bench")
            await store.ensure_indexes()
            # The log ends now: entries are within their retention (the TTL monitor would
            # remove older ones while the bench runs).
            t0 = datetime.now(UTC) - timedelta(seconds=size / RATE_PER_S + 60)
            print(f"· log search: {BASELINE:,} entries (baseline) …", flush=True)
            fill_s = await _fill(store, 0, BASELINE, t0)
            small = await _measure(store, BASELINE, t0)
            print(f"· log search: filling to {size:,} entries …", flush=True)
            fill_s += await _fill(store, BASELINE, size, t0)
            large = await _measure(store, size, t0)
            disk = await _disk(store, Path(tmp) / "mongo")
            await client.close()
        finally:
            embedded.stop(mongo)
    return {
        "entries": size,
        "baseline_entries": BASELINE,
        "insert_per_s": round(size / fill_s),
        "queries": {
            name: {
                "baseline_ms": small[name]["ms"],
                "ms": large[name]["ms"],
                "rows": large[name]["rows"],
                "ratio": round(large[name]["ms"] / max(small[name]["ms"], 0.1), 2),
            }
            for name in large
        },
        "disk": disk,
    }


def report(out: dict[str, Any]) -> None:
    print(
        f"\n  log search at {out['entries']:,} entries (baseline {out['baseline_entries']:,};"
        f" median of {RUNS}, a page of 50):"
    )
    for name, q in out["queries"].items():
        print(
            f"    {name:<38} {q['ms']:>8.1f} ms  ({q['rows']:>2} rows; "
            f"{q['baseline_ms']:.1f} ms at the baseline: {q['ratio']:.2f}x)"
        )
    d = out["disk"]
    print(
        f"  log per million entries: data {d['data_mib_per_million']:,.0f} MiB, indexes "
        f"{d['index_mib_per_million']:,.0f} MiB, on disk {d['disk_mib_per_million']:,.0f} MiB"
        f" (entries of {d['avg_entry_bytes']:.0f} B; filled at {out['insert_per_s']:,}/s)"
    )


def main() -> None:
    raw = os.environ.get("BENCH_SEARCH_EVENTS", "").strip()
    size = int(raw) if raw else 200_000
    if size <= BASELINE:
        raise SystemExit(f"BENCH_SEARCH_EVENTS must be above {BASELINE}")
    out = asyncio.run(run(size))
    report(out)
    path = Path(__file__).with_name("results") / "logsearch.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
