"""The mapper: learns a connector's structure from its first event, maps fields onto
contacts, and publishes the mapped event.  Ack only after the output is acked by
JetStream (at-least-once); the output's msg id makes the re-publish after a crash a
duplicate that JetStream drops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import msgspec
from aiohttp import web

from libs.domain import events, mapping, references, structure
from libs.domain.connector import ConnectorConfig
from libs.infra import logging as hlog
from libs.infra.metrics import add_ops_routes
from libs.infra.mongo import store as hmongo
from libs.infra.mongo.contacts import Contacts
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.nats.channel_registry import ChannelRegistry
from libs.infra.nats.registry import Registry
from libs.infra.settings import Settings
from libs.runtime import worker
from services.mapper.metrics import MapperMetrics

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", MapperMetrics)
BACKBONE = web.AppKey("backbone", worker.Backbone)

DURABLE = "mapper"
STRUCTURE_TTL_S = 5.0
DISABLED = events.MappingResult(
    status="disabled", reason="no field mapping configured"
)  # the operator may replace a structure; re-read it this often


class Mapper:
    def __init__(
        self,
        settings: Settings,
        metrics: MapperMetrics,
        publisher: natsio.AckPublisher,
        store: hmongo.Store,
        registry: Registry,
        channels: ChannelRegistry,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self.store = store
        self.registry = registry
        self.decode = events.decoder(events.EventReceived).decode
        self._structures: dict[str, Known] = {}
        self.channels = channels
        self.contacts = Contacts(store)
        self._agents_at: float | None = None
        self._agent_ids: set[str] = set()

    async def handle(self, msgs: Sequence[natsio.Msg]) -> None:
        decoded: list[tuple[natsio.Msg, events.EventReceived]] = []
        for msg in msgs:
            if msg.metadata.num_delivered and msg.metadata.num_delivered > 1:
                self.metrics.redeliveries.inc()
            try:
                decoded.append((msg, self.decode(msg.data)))
            except msgspec.DecodeError as exc:
                hlog.get().error("mapper.undecodable", error=str(exc))
                self.metrics.messages.labels("undecodable").inc()
                await msg.term()
        if not decoded:
            return
        try:
            try:
                await self._refresh_structures({ev.connector_id for _, ev in decoded})
                results = await self._map_contacts([ev for _, ev in decoded])
            except hmongo.UNREACHABLE:
                raise
            except Exception as exc:  # one bad event must not hold the others
                hlog.get().warning("mapper.batch_failed", error=repr(exc)[:300])
                results = await self._one_by_one([ev for _, ev in decoded])
        except hmongo.UNREACHABLE as exc:  # Mongo away: the whole batch comes back later
            hlog.get().warning("mapper.contacts_failed", error=repr(exc)[:300])
            self.metrics.messages.labels("retried").inc(len(decoded))
            await asyncio.gather(*(msg.nak(delay=1.0) for msg, _ in decoded))
            return
        await self._publish(decoded, results)

    async def _one_by_one(
        self, batch: Sequence[events.EventReceived]
    ) -> dict[str, events.MappingResult]:
        """The batch again event by event: the one that fails alone (a poison event) is
        mapped as an error with the reason and goes on to its steps and the log."""
        results: dict[str, events.MappingResult] = {}
        for event in batch:
            try:
                await self._refresh_structures({event.connector_id})
                results |= await self._map_contacts([event])
            except hmongo.UNREACHABLE:
                raise
            except Exception as exc:
                hlog.get().error("mapper.poison", event_id=event.event_id, error=repr(exc)[:300])
                self.metrics.mappings.labels("error").inc()
                results[event.event_id] = events.MappingResult(
                    status="error", reason=f"mapping failed: {type(exc).__name__}: {exc}"[:500]
                )
        return results

    async def _map_contacts(
        self, batch: Sequence[events.EventReceived]
    ) -> dict[str, events.MappingResult]:
        """Field mapping for a whole batch: pure plans, then one bulk write (F6)."""
        agents = await self._agents()
        plans = []
        for event in batch:
            snap = self.registry.by_id(event.connector_id)
            if snap is None or snap.config.mapping is None:
                continue
            plans.append(
                (
                    event.event_id,
                    mapping.plan(
                        snap.config.mapping,
                        event.context(),
                        known_channels=self.channels.ids(),
                        known_agents=agents,
                    ),
                )
            )
        if not plans:
            return {}
        results = await self.contacts.apply(plans, events.utcnow())
        for result in results.values():
            self.metrics.mappings.labels(result.status).inc()
        return results

    async def _agents(self) -> set[str]:
        """Agent emails, re-read every few seconds (an owner must be a known agent)."""
        now = time.monotonic()
        if self._agents_at is None or now - self._agents_at > STRUCTURE_TTL_S:
            rows = await self.store.find("agents", {}, limit=100_000)
            self._agent_ids = {str(r["_id"]) for r in rows}
            self._agents_at = now
        return self._agent_ids

    async def _publish(
        self,
        decoded: Sequence[tuple[natsio.Msg, events.EventReceived]],
        results: dict[str, events.MappingResult],
    ) -> None:
        """Publish the batch's mapped events, then ack each one stored (nak the others:
        they come back).  The acks of the publishes are awaited together."""
        ready: list[tuple[natsio.Msg, events.EventReceived]] = []
        out: list[tuple[str, bytes, str]] = []
        for msg, event in decoded:
            try:
                learned, drift = await self._structure(event)
                mapped = events.EventMapped(
                    event_id=event.event_id,
                    connector_id=event.connector_id,
                    connector_version=event.connector_version,
                    occurred_at=events.utcnow(),
                    correlation_id=event.correlation_id,
                    received=event,
                    mapping=results.get(event.event_id, DISABLED),
                    drift=drift,
                    structure_learned=learned,
                )
            except Exception as exc:
                await self._retry(msg, event, exc)
                continue
            ready.append((msg, event))
            out.append(
                (
                    subjects.mapped(self.settings.prefix, event.connector_id),
                    events.encode(mapped),
                    f"mapped:{event.event_id}",
                )
            )
        outcomes = await self.publisher.publish_many(out)
        for (msg, event), error in zip(ready, outcomes, strict=True):
            if error is not None:
                await self._retry(msg, event, error)
            else:
                await msg.ack()
        self.metrics.messages.labels("mapped").inc(outcomes.count(None))

    async def _retry(self, msg: natsio.Msg, event: events.EventReceived, exc: Exception) -> None:
        hlog.get().warning(
            "mapper.retry",
            error=repr(exc),
            event_id=event.event_id,
            connector_id=event.connector_id,
            correlation_id=event.correlation_id,
        )
        self.metrics.messages.labels("retried").inc()
        await msg.nak(delay=1.0)

    async def _refresh_structures(self, connector_ids: set[str]) -> None:
        """Re-read stale structures once per connector per batch (the operator may have
        replaced one), not once per event."""
        now = time.monotonic()
        stale = [
            cid
            for cid in connector_ids
            if cid not in self._structures or now - self._structures[cid].at > STRUCTURE_TTL_S
        ]
        docs = await asyncio.gather(*(self.store.get_structure(cid) for cid in stale))
        for cid, doc in zip(stale, docs, strict=True):
            self._structures[cid] = Known.of(now, structure.from_document(doc) if doc else None)

    async def _structure(
        self, event: events.EventReceived
    ) -> tuple[bool, events.DriftReport | None]:
        """Learn the structure from the first event; flag drift on later ones."""
        cid = event.connector_id
        known = self._structures.get(cid)
        document = event.document()
        if known is None or known.check is None:
            learned = structure.infer(document)
            # Cached before the insert: the batch's other events of this connector, which
            # run while this one waits, compare against it instead of inserting again.
            self._structures[cid] = Known.of(time.monotonic(), learned)
            inserted = await self.store.insert_structure_if_absent(
                cid, structure.to_document(learned, from_event=event.event_id)
            )
            if inserted:
                self.metrics.structures_learned.inc()
            return inserted, None
        found = known.check(document)
        if not found:
            return False, None
        self.metrics.drift.labels(self.metrics.connector(cid)).inc()
        snap = self.registry.by_id(cid)
        gone = [*found.missing, *(change.path for change in found.changed)]
        affected = affected_by(snap.config, gone) if snap is not None else []
        return False, events.DriftReport(
            added=found.added, missing=found.missing, changed=found.changed, affected=affected
        )


@dataclass(frozen=True, slots=True)
class Known:
    """A connector's structure as last read (None: none learned yet), with its checker."""

    at: float  # monotonic time of the read
    check: structure.DriftChecker | None

    @classmethod
    def of(cls, at: float, learned: structure.Structure | None) -> Known:
        return cls(at, structure.DriftChecker(learned) if learned is not None else None)


def affected_by(config: ConnectorConfig, missing: Sequence[str]) -> list[str]:
    """The mapping/step fields (JSON paths) that read an attribute the event lacks or
    holds with another type than the structure's."""
    hit = []
    for where, path in references.event_references(config):
        if any(path == m or path.startswith((m + ".", m + "[")) for m in missing):
            hit.append(f"{where} ({path})")
    return hit


STATE = web.AppKey("state", Mapper)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with worker.backbone(settings, "hookline-mapper") as bb:
        mapper = Mapper(settings, app[METRICS], bb.publisher, bb.store, bb.registry, bb.channels)
        app[STATE], app[BACKBONE] = mapper, bb
        async with worker.consuming(
            bb,
            stream=settings.stream_events,
            durable=DURABLE,
            subject=subjects.all_received(settings.prefix),
            handler=mapper.handle,
            lag=app[METRICS].pending,
            # A third batch in flight: draining a backlog of mapped events, 2,100 to 2,400
            # events/s with two, 2,600 to 3,200 with three (make bench, 2 cores).
            parallel=3,
        ):
            yield


def create_app(settings: Settings, metrics: MapperMetrics | None = None) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = metrics or MapperMetrics()
    app.cleanup_ctx.append(_resources)

    async def ready() -> bool:
        return BACKBONE in app and await app[BACKBONE].ready()

    add_ops_routes(app, app[METRICS], ready)
    return app
