"""What every consumer service (mapper, executor) opens, runs and closes, in one place.

``backbone`` opens NATS (streams and buckets provisioned), the connector and channel
registries and MongoDB; ``consuming`` runs a durable pull consumer with its lag gauge.
Closing is the reverse, in the order graceful shutdown needs: consumers finish and
settle their batch in flight, then registries stop, then NATS drains, then Mongo.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import msgspec
from aiohttp import web
from prometheus_client import Gauge

from libs.infra import logging as hlog
from libs.infra.metrics import BaseMetrics, WorkerMetrics, add_ops_routes
from libs.infra.mongo import store as hmongo
from libs.infra.nats import client as natsio
from libs.infra.nats.channel_registry import ChannelRegistry, ensure_channels_bucket
from libs.infra.nats.channel_registry import bucket_name as channels_bucket
from libs.infra.nats.registry import Registry
from libs.infra.settings import Settings


class Consumes(Protocol):
    """What running a pull consumer needs: settings, JetStream, and the list of
    subscriptions that closing unsubscribes before NATS drains."""

    settings: Settings
    js: natsio.JetStreamContext
    subs: list[natsio.JetStreamContext.PullSubscription]


@dataclass
class Backbone:
    settings: Settings
    nc: natsio.Client
    js: natsio.JetStreamContext
    registry: Registry
    channels: ChannelRegistry
    store: hmongo.Store
    publisher: natsio.AckPublisher  # JetStream publish with ack, for the services' output
    subs: list[natsio.JetStreamContext.PullSubscription] = field(default_factory=list)

    async def ready(self) -> bool:
        return self.nc.is_connected and await self.store.ping()


@contextlib.asynccontextmanager
async def backbone(
    settings: Settings, name: str, metrics: BaseMetrics | None = None
) -> AsyncIterator[Backbone]:
    nc = await natsio.connect(settings, name)
    mongo = hmongo.client(settings, [metrics.mongo_listener()] if metrics else [])
    js = nc.jetstream()
    store = hmongo.Store(mongo, settings.mongo_db)
    bb = Backbone(settings, nc, js, Registry(), ChannelRegistry(), store, natsio.AckPublisher(nc))
    try:
        await bb.registry.start(js, await natsio.provision(js, settings), settings.kv_connectors)
        channels_kv = await ensure_channels_bucket(js, settings)
        await bb.channels.start(js, channels_kv, channels_bucket(settings))
        await bb.publisher.start()
        yield bb
    finally:
        await bb.publisher.stop()
        await bb.registry.stop()
        await bb.channels.stop()
        await natsio.shutdown(nc, bb.subs)
        await mongo.close()


@contextlib.asynccontextmanager
async def consuming(
    bb: Consumes,
    *,
    stream: str,
    durable: str,
    subject: str,
    handler: natsio.BatchHandler,
    lag: Gauge,
    parallel: int = 2,
    batch: int = 256,
    max_ack_pending: int = 5000,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[None]:
    """Run ``handler`` over batches. ``parallel`` fetch loops, each with its own pull
    subscription on the same durable consumer, keep a batch in flight while another is
    being written (the database round trip is where a batch spends its time).

    Consumers nested in one process share a ``stop``: each loop may be in a long poll
    for up to its fetch wait, and one event set at the first exit lets every loop finish
    in that one wait instead of one after the other."""
    subs = [
        await natsio.pull_subscription(
            bb.js,
            stream=stream,
            durable=durable,
            subject=subject,
            ack_wait_s=bb.settings.ack_wait_s,
            max_ack_pending=max_ack_pending,
        )
        for _ in range(parallel)
    ]
    bb.subs.extend(subs)
    stop = stop or asyncio.Event()
    loops = [
        asyncio.create_task(
            natsio.consume(sub, handler, stop, batch=batch, keepalive_s=bb.settings.ack_wait_s / 3),
            name=f"{durable}-consume-{i}",
        )
        for i, sub in enumerate(subs)
    ]
    watcher = asyncio.create_task(natsio.watch_lag(subs[0], lag, durable, stop))
    try:
        yield
    finally:
        stop.set()  # finish the batches in flight and settle them
        await asyncio.gather(*loops)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


T = TypeVar("T")


async def decode_batch(
    msgs: Sequence[natsio.Msg],
    decode: Callable[[bytes], T],
    metrics: WorkerMetrics,
) -> list[tuple[natsio.Msg, T]]:
    """The batch's messages with their decoded events. One that does not decode is
    logged, counted and terminated: redelivering it would not make it decode."""
    decoded: list[tuple[natsio.Msg, T]] = []
    for msg in msgs:
        if (msg.metadata.num_delivered or 1) > 1:
            metrics.redeliveries.inc()
        try:
            decoded.append((msg, decode(msg.data)))
        except msgspec.DecodeError as exc:
            hlog.get().error(f"{metrics.service}.undecodable", error=str(exc))
            metrics.messages.labels("undecodable").inc()
            await msg.term()
    return decoded


# A worker's role: given the backbone, it runs its consumers while the context is open
# and yields the object that holds its state (the app keeps it, for tests and probes).
Role = Callable[[Backbone], contextlib.AbstractAsyncContextManager[object]]

BACKBONE = web.AppKey("backbone", Backbone)
STATE = web.AppKey("state", object)


def worker_app(settings: Settings, name: str, metrics: BaseMetrics, role: Role) -> web.Application:
    """The composition root of a consumer service: the backbone is opened once, from
    settings, then the role runs on it; the ops routes report ready once both are up."""
    app = web.Application()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with backbone(settings, name, metrics) as bb, role(bb) as state:
            app[BACKBONE], app[STATE] = bb, state
            yield

    app.cleanup_ctx.append(resources)

    async def ready() -> bool:
        return BACKBONE in app and await app[BACKBONE].ready()

    add_ops_routes(app, metrics, ready)
    return app
