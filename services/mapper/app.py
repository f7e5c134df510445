"""The mapper: learns a connector's structure from its first event, maps fields onto
contacts, and publishes the mapped event.  Ack only after the output is acked by
JetStream (at-least-once); the output's msg id makes the re-publish after a crash a
duplicate that JetStream drops.

This module is the NATS side (decode, publish, settle); what a batch becomes is the
core's (``services.mapper.core``), which takes decoded events and ports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from libs.domain import events
from libs.infra import logging as hlog
from libs.infra.mongo import store as hmongo
from libs.infra.mongo.contacts import Contacts
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.nats.channel_registry import ChannelRegistry
from libs.infra.nats.registry import Registry
from libs.infra.settings import Settings
from libs.runtime import worker
from services.mapper.core import MapperCore
from services.mapper.metrics import MapperMetrics

DURABLE = "mapper"


class Mapper:
    """The NATS side of the mapper: decodes a batch of messages, has the core map it
    (``services.mapper.core``), publishes the mapped events and settles the messages."""

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
        self.decode = events.decoder(events.EventReceived).decode
        self.core = MapperCore(
            store=store,
            contacts=Contacts(store),
            connectors=registry,
            channels=channels,
            metrics=metrics,
        )

    async def handle(self, msgs: Sequence[natsio.Msg]) -> None:
        decoded = await worker.decode_batch(msgs, self.decode, self.metrics)
        if not decoded:
            return
        try:
            results = await self.core.map([ev for _, ev in decoded])
        except hmongo.UNREACHABLE as exc:  # Mongo away: the whole batch comes back later
            hlog.get().warning("mapper.contacts_failed", error=repr(exc)[:300])
            self.metrics.messages.labels("retried").inc(len(decoded))
            await asyncio.gather(*(msg.nak(delay=1.0) for msg, _ in decoded))
            return
        await self._publish(decoded, results)

    async def _publish(
        self,
        decoded: Sequence[tuple[natsio.Msg, events.EventReceived]],
        results: Sequence[events.EventMapped | Exception],
    ) -> None:
        """Publish the batch's mapped events, then ack each one stored (nak the others:
        they come back).  The acks of the publishes are awaited together."""
        ready: list[tuple[natsio.Msg, events.EventReceived]] = []
        out: list[tuple[str, bytes, str]] = []
        for (msg, event), mapped in zip(decoded, results, strict=True):
            if isinstance(mapped, Exception):
                await self._retry(msg, event, mapped)
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


def create_app(settings: Settings, metrics: MapperMetrics | None = None) -> web.Application:
    metrics = metrics or MapperMetrics(max_connectors=settings.metrics_max_connectors)

    @contextlib.asynccontextmanager
    async def map_events(bb: worker.Backbone) -> AsyncIterator[Mapper]:
        mapper = Mapper(settings, metrics, bb.publisher, bb.store, bb.registry, bb.channels)
        async with worker.consuming(
            bb,
            stream=settings.stream_events,
            durable=DURABLE,
            subject=subjects.all_received(settings.prefix),
            handler=mapper.handle,
            lag=metrics.pending,
            # A third batch in flight: draining a backlog of mapped events, 2,100 to 2,400
            # events/s with two, 2,600 to 3,200 with three (make bench, 2 cores).
            parallel=3,
        ):
            yield mapper

    return worker.worker_app(settings, "hookline-mapper", metrics, map_events)
