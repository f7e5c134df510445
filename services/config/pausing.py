"""Pause and resume a connector (F14).

While a connector is paused, ingest still stores and answers and the mapper still
maps; the executor runs no step but puts each mapped event in the HELD stream, on the
connector's subject, in the order it got them.  Resuming clears ``paused`` and puts the
held events back on the mapped subject in that order (:class:`Releaser`), so they run
as if they had just been mapped.

Everything that holds state is durable: ``paused`` is in MongoDB and the KV snapshot,
held events in a file stream without a max age.  A release interrupted by a restart
is finished by the next sweep (:meth:`Releaser.run`, at start and every few seconds,
on every API replica): held events of a connector that is not paused are put back.
Each is put back with its held sequence as message id, so two replicas (or a sweep
and a resume) releasing the same event publish it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import msgspec
import nats.errors
from aiohttp import web
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.domain import events
from libs.infra import logging as hlog
from libs.infra.http import ApiError
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.runtime import background
from services.config import models, snapshots
from services.config.connectors_api import CID, connector
from services.config.context import CTX, Context, connector_or_404
from services.config.metrics import ConfigMetrics
from services.config.openapi import Routes

routes = Routes()
SWEEP_S = 5.0
BATCH = 256


class Releaser:
    """Puts held events back, one connector at a time per process."""

    def __init__(self, ctx: Context, metrics: ConfigMetrics) -> None:
        self.ctx = ctx
        self.metrics = metrics
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[int]] = set()

    async def held(self) -> dict[str, int]:
        """Held events per connector id, from the stream's per-subject counts."""
        prefix = subjects.held(self.ctx.settings.prefix, "")
        info = await self.ctx.js.stream_info(
            self.ctx.settings.stream_held,
            subjects_filter=subjects.all_held(self.ctx.settings.prefix),
        )
        found = info.state.subjects or {}
        return {subject.removeprefix(prefix): n for subject, n in found.items() if n}

    def start(self, connector_id: str) -> None:
        """Release in the background (the resume answers at once)."""
        task = asyncio.create_task(self.release(connector_id), name=f"release-{connector_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def release(self, connector_id: str) -> int:
        """Put the connector's held events back on its mapped subject, oldest first, until
        none is left or it is paused again; returns how many were put back."""
        lock = self._locks.setdefault(connector_id, asyncio.Lock())
        async with lock:
            try:
                return await self._release(connector_id)
            except Exception as exc:  # the next sweep tries again
                hlog.get().warning(
                    "pause.release_failed", connector_id=connector_id, error=repr(exc)
                )
                return 0

    async def _release(self, connector_id: str) -> int:
        settings, js = self.ctx.settings, self.ctx.js
        held = subjects.held(settings.prefix, connector_id)
        sub = await js.pull_subscribe(
            held,
            stream=settings.stream_held,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE,  # progress is the purge below, not acks
                deliver_policy=DeliverPolicy.ALL,
                inactive_threshold=30.0,
            ),
        )
        released = 0
        waiting = _Arrivals()
        try:
            while True:
                doc = await self.ctx.store.get_connector(connector_id)
                if doc is not None and doc.get("paused"):
                    break  # paused again: the rest waits for the next resume
                try:
                    msgs = await sub.fetch(BATCH, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    msgs = []
                for m in msgs:
                    waiting.add(m)
                out = waiting.ready(final=not msgs)
                if out:
                    await self._put_back(connector_id, out)
                    released += len(out)
                    self.metrics.released.labels(self.metrics.connector(connector_id)).inc(len(out))
                    # Everything held before the oldest still waiting is back: drop it here.
                    await js.purge_stream(settings.stream_held, subject=held, seq=waiting.floor)
                if not msgs:
                    break  # none left
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if released:
            hlog.get().info("pause.released", connector_id=connector_id, count=released)
        return released

    async def _put_back(self, connector_id: str, msgs: Sequence[natsio.Msg]) -> None:
        mapped = subjects.mapped(self.ctx.settings.prefix, connector_id)
        # Published in order on one connection, so the stream keeps their order.
        await asyncio.gather(
            *(
                self.ctx.js.publish(
                    mapped,
                    m.data,
                    headers=natsio.msg_id_header(f"released:{m.metadata.sequence.stream}"),
                )
                for m in msgs
            )
        )

    async def sweep(self) -> None:
        """Release what a connector that is not paused still holds; refresh the gauges."""
        held = await self.held()
        paused = {
            d["_id"] for d in await self.ctx.store.find("connectors", {"paused": True}, 10000)
        }
        self.metrics.paused.set(len(paused))
        self.metrics.held.clear()
        for connector_id, count in held.items():
            self.metrics.held.labels(self.metrics.connector(connector_id)).inc(count)
            if connector_id not in paused:
                await self.release(connector_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:
                hlog.get().warning("pause.sweep_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SWEEP_S)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def held_count(ctx: Context, connector_id: str) -> int:
    """Events the connector holds now (for its stats)."""
    subject = subjects.held(ctx.settings.prefix, connector_id)
    info = await ctx.js.stream_info(ctx.settings.stream_held, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


class _Received(msgspec.Struct):
    occurred_at: datetime
    event_id: str = ""


class _Held(msgspec.Struct):
    received: _Received


_arrival = msgspec.json.Decoder(_Held).decode
# The mapper and the executor work on batches concurrently, so a held event may sit a
# few batches away from its place in arrival order, never farther than this.
LOOKAHEAD = 4096


class _Arrivals:
    """Held messages put back in arrival order (ingest's receive time): a heap that
    gives out its oldest only once ``LOOKAHEAD`` later ones have been read, so an event
    held out of place still goes back in its place."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str, int, natsio.Msg]] = []
        self._last_seq = 0

    def add(self, msg: natsio.Msg) -> None:
        seq = msg.metadata.sequence.stream
        self._last_seq = max(self._last_seq, seq)
        try:
            got = _arrival(msg.data).received
            key = (got.occurred_at, got.event_id)
        except (msgspec.DecodeError, msgspec.ValidationError):
            key = (datetime.max.replace(tzinfo=UTC), "")  # not ours to order: last
        heapq.heappush(self._heap, (*key, seq, msg))

    def ready(self, *, final: bool) -> list[natsio.Msg]:
        keep = 0 if final else LOOKAHEAD
        out = []
        while len(self._heap) > keep:
            out.append(heapq.heappop(self._heap)[3])
        return out

    @property
    def floor(self) -> int:
        """The first held sequence not yet put back (purge everything before it)."""
        if not self._heap:
            return self._last_seq + 1
        return min(seq for _, _, seq, _ in self._heap)


RELEASER = web.AppKey("releaser", Releaser)


@contextlib.asynccontextmanager
async def releasing(
    app: web.Application, ctx: Context, metrics: ConfigMetrics
) -> AsyncIterator[Releaser]:
    """The API role's releaser and its sweep, stopped with the app."""
    releaser = Releaser(ctx, metrics)
    app[RELEASER] = releaser
    try:
        async with background.loop_running(releaser.run, "pause-sweep"):
            yield releaser
    finally:
        await releaser.close()


async def _set_paused(request: web.Request, paused: bool) -> models.Connector:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    updated = await ctx.store.set_fields(
        doc["_id"], {"paused": paused, "paused_at": events.utcnow()}
    )
    if updated is None:
        raise ApiError(404, "not_found", "connector not found")
    await snapshots.publish(ctx.kv, updated)
    if not paused:
        request.app[RELEASER].start(doc["_id"])
    return connector(ctx.settings, updated)


@routes.operation(
    "POST", CID + "/pause", "pauseConnector", "Pause the connector's steps", tag="connectors",
    returns=models.Connector, errors=(404,),
    description="Events are still stored, answered 2xx and mapped; their steps wait "
    "until resume. Idempotent.",
)  # fmt: skip
async def pause(request: web.Request) -> models.Connector:
    return await _set_paused(request, True)


@routes.operation(
    "POST", CID + "/resume", "resumeConnector", "Resume the connector's steps",
    tag="connectors", returns=models.Connector, errors=(404,),
    description="The held events run in arrival order, then new ones. Idempotent.",
)  # fmt: skip
async def resume(request: web.Request) -> models.Connector:
    return await _set_paused(request, False)
