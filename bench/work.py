"""The work per event, counted: what each stage sent to NATS and to the database while a
run's events went through, divided by the events.

Two sources, both counts, not estimates:

- nats-server's monitoring endpoint: per client connection (named after its service)
  the messages it sent (``in_msgs``: publishes, acks, pull requests, API calls) and was
  sent (``out_msgs``: deliveries, publish acks, replies); per stream the messages
  stored (JetStream publishes that were not duplicates); per durable consumer the
  deliveries (redeliveries included), redeliveries and the ack floor's progress.  KV
  buckets are streams too (``KV_<bucket>``): their watchers' deliveries are the KV
  reads.
- each service's ``/metrics``: ``hookline_<service>_mongo_commands_total{command}`` and
  ``mongo_documents_written_total{collection}`` (``libs.infra.mongo.counting``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_MONGO = re.compile(
    r'^hookline_(\w+?)_mongo_(commands|documents_written)_total\{\w+="([^"]*)"\} (\S+)$', re.M
)


@dataclass
class Counts:
    nats: dict[str, dict[str, float]] = field(default_factory=dict)  # connection -> in/out
    streams: dict[str, float] = field(default_factory=dict)  # stream -> messages stored
    consumers: dict[str, dict[str, float]] = field(default_factory=dict)  # stream/durable
    mongo: dict[str, dict[str, float]] = field(default_factory=dict)  # service -> counters


async def _json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as r:
        r.raise_for_status()
        return await r.json(content_type=None)


async def snapshot(
    session: aiohttp.ClientSession, nats_monitor: str, services: dict[str, str]
) -> Counts:
    """The counters now; ``services`` maps a stage to its base URL (for /metrics)."""
    counts = Counts()
    connz = await _json(session, nats_monitor + "/connz?limit=4096")
    for conn in connz.get("connections") or []:
        name = str(conn.get("name") or "?").removeprefix("hookline-")
        entry = counts.nats.setdefault(name, {"in": 0.0, "out": 0.0})
        entry["in"] += conn.get("in_msgs", 0)
        entry["out"] += conn.get("out_msgs", 0)
    jsz = await _json(session, nats_monitor + "/jsz?streams=true&consumers=true")
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            name = stream["name"]
            counts.streams[name] = float((stream.get("state") or {}).get("last_seq", 0))
            for consumer in stream.get("consumer_detail") or []:
                # A bucket's consumers are its watchers (ephemeral, random names).
                durable = "watchers" if name.startswith("KV_") else consumer.get("name", "?")
                key = f"{name}/{durable}"
                entry = counts.consumers.setdefault(key, defaultdict(float))
                entry["delivered"] += (consumer.get("delivered") or {}).get("consumer_seq", 0)
                entry["redelivered"] += consumer.get("num_redelivered", 0)
                entry["acked"] += (consumer.get("ack_floor") or {}).get("consumer_seq", 0)
    for stage, url in services.items():
        async with session.get(url + "/metrics") as r:
            text = await r.text()
        entry = counts.mongo.setdefault(stage, defaultdict(float))
        for _, kind, label, value in _MONGO.findall(text):
            key = "round trips" if kind == "commands" else "docs written"
            entry[key] += float(value)
            entry[f"{kind}:{label}"] += float(value)
    return counts


def per_event(before: Counts, after: Counts, events: int) -> dict[str, Any]:
    """What grew between the snapshots, per event (rounded to 3 places)."""
    n = max(events, 1)

    def rate(a: float, b: float) -> float:
        return round((b - a) / n, 3)

    nats = {
        name: {k: rate(before.nats.get(name, {}).get(k, 0.0), v) for k, v in io.items()}
        for name, io in after.nats.items()
    }
    streams = {
        name: rate(before.streams.get(name, 0.0), v)
        for name, v in after.streams.items()
        if v != before.streams.get(name, 0.0)
    }
    consumers = {
        key: {k: rate(before.consumers.get(key, {}).get(k, 0.0), v) for k, v in c.items()}
        for key, c in after.consumers.items()
    }
    mongo = {
        stage: {k: rate(before.mongo.get(stage, {}).get(k, 0.0), v) for k, v in c.items()}
        for stage, c in after.mongo.items()
    }
    return {
        "events": events,
        "nats_messages": {k: v for k, v in nats.items() if v["in"] or v["out"]},
        "jetstream_publishes": streams,
        "consumers": {k: v for k, v in consumers.items() if v.get("delivered")},
        "mongo": {k: {m: x for m, x in v.items() if x} for k, v in mongo.items()},
    }


def report(title: str, work: dict[str, Any]) -> None:
    print(f"\n  work per event, {title} ({work['events']:,} events), counted:")
    for name, io in sorted(work["nats_messages"].items()):
        print(f"    NATS {name:<22} sent {io['in']:>6.2f}   received {io['out']:>6.2f}")
    publishes = ", ".join(f"{k} {v:.2f}" for k, v in sorted(work["jetstream_publishes"].items()))
    print(f"    JetStream publishes stored: {publishes}")
    for key, c in sorted(work["consumers"].items()):
        print(
            f"    consumer {key:<32} delivered {c.get('delivered', 0):.2f}, "
            f"redelivered {c.get('redelivered', 0):.2f}, ack floor +{c.get('acked', 0):.2f}"
        )
    for stage, m in sorted(work["mongo"].items()):
        detail = ", ".join(
            f"{k.split(':', 1)[1]} {v:.2f}"
            for k, v in sorted(m.items())
            if k.startswith("commands:")
        )
        written = ", ".join(
            f"{k.split(':', 1)[1]} {v:.2f}"
            for k, v in sorted(m.items())
            if k.startswith("documents_written:")
        )
        print(
            f"    MongoDB {stage:<10} round trips {m.get('round trips', 0):.2f} ({detail or '-'}); "
            f"documents written {m.get('docs written', 0):.2f} ({written or '-'})"
        )
