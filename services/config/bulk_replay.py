"""Bulk replay (F14): run again the logged events a selection picks (status, time
range, payload, header and query values), counted first, in the background.

A job is a MongoDB document (``bulk_replays``): its selection as search terms, its
ceiling (the job's creation: events logged later are not its business, or a replay
would select its own replays), a cursor (the last entry walked) and its counts.  The
API replicas run jobs (:class:`Replayer`): one claims a running job with a lease,
walks the log oldest first from the cursor (``log_search.oldest``), publishes each
event at ``bulk_replay_rate_per_s`` and records its progress every second, which also
renews the lease and notices a cancel.  A replica that stops hands its job back; one
that crashes loses its lease after ``LEASE_S`` and another (or its restart) goes on
from the cursor.

A replay's event id is derived from the job and the original, and its message id is
``bulk:<job>:<original>``: an event published again after a takeover is a duplicate
to JetStream within its window, and beyond it the same log entry and step journal
(keyed by event id), so no event is replayed twice by one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events, search
from libs.infra import logging as hlog
from libs.infra.http import ApiError
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.runtime import background
from services.config import log_search, models
from services.config.connectors_api import CID
from services.config.context import CTX, Context, connector_or_404
from services.config.events_api import (
    first_window_s,
    floor_of,
    query_time,
    received_from_log,
    retention_of,
)
from services.config.metrics import ConfigMetrics
from services.config.openapi import Routes

routes = Routes()
JOBS = "/api/v1/bulk-replays"
LEASE_S = 15.0
POLL_S = 1.0
PROGRESS_S = 1.0
MAX_VALUES = 10  # conditions per job, as a search allows
Doc = dict[str, Any]


def _leaves(value: Any, keys: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(keys, value or list of values) of a nested selection."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(inner, (*keys, key))
    else:
        yield keys, value


def conditions_of(body: models.BulkReplay) -> list[list[search.Term]]:
    """The selection's search terms (each condition a list of alternatives); 400 for
    a value that cannot be matched."""
    conditions: list[list[search.Term]] = []
    for field in search.FIELDS:
        given = getattr(body, field)
        if given is msgspec.UNSET or given == {}:
            continue
        for keys, value in _leaves(given):
            name = ".".join((field, *keys))
            values = value if isinstance(value, list) else [value]
            texts = [search.text(v) for v in values]
            if not keys or not texts or any(t is None for t in texts):
                raise ApiError(
                    422, "invalid_selection", f"{name}: give a value, or a list of values"
                )
            try:
                alternatives = {  # ordered, unique (bytes and former int terms)
                    term: None
                    for t in texts
                    if t is not None
                    for term in search.condition_at(field, keys, t)
                }
            except search.SearchError as exc:
                raise ApiError(422, "invalid_selection", str(exc)) from None
            conditions.append(list(alternatives))
    if len(conditions) > MAX_VALUES:
        raise ApiError(422, "invalid_selection", f"at most {MAX_VALUES} values to match")
    if body.status != "any":
        # Last: the database is asked with the first condition, and a payload value is
        # likelier to be rare than a status.
        conditions.append(search.condition("status", body.status))
    return conditions


def replay_id(job_id: str, original: str) -> str:
    """The replay's event id: the same for the same job and original (see above)."""
    return hashlib.blake2b(f"{job_id}:{original}".encode(), digest_size=16).hexdigest()


def _replayable(row: Doc) -> bool:
    return row.get("status") not in events.REQUEST_STATUSES  # refusals never were events


def _selection(job: Doc) -> log_search.Selection:
    return log_search.Selection(
        conditions=job["conditions"], after=job.get("after"), before=job.get("before")
    )


async def _walk(
    ctx: Context, doc: Doc, job: Doc, start: log_search.Cursor | None = None
) -> AsyncIterator[list[Doc]]:
    async for batch in log_search.oldest(
        ctx.store,
        doc["_id"],
        _selection(job),
        floor=floor_of(doc),
        ceiling=job["created_at"],
        window_s=await first_window_s(ctx, doc),
        start=start,
    ):
        yield batch


def job_view(job: Doc) -> models.BulkReplayJob:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return models.BulkReplayJob(
        id=job["_id"],
        connector_id=job["connector_id"],
        state=job["state"],
        matched=job["matched"],
        done=job["done"],
        skipped=job.get("skipped", 0),
        version=job["version"],
        rate_per_s=job["rate_per_s"],
        selection=msgspec.json.decode(job["selection"]),
        created_at=job["created_at"].isoformat(),
        finished_at=iso(job.get("finished_at")),
        error=job.get("error"),
    )


class Replayer:
    """Runs the bulk replay jobs of this process, one at a time."""

    def __init__(self, ctx: Context, metrics: ConfigMetrics) -> None:
        self.ctx = ctx
        self.metrics = metrics
        self.owner = uuid.uuid4().hex
        self.lease_s = LEASE_S
        self.wake = asyncio.Event()  # a new job: look now, not at the next poll

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            job = None
            try:
                job = await self.ctx.store.claim_bulk_replay(
                    self.owner, events.utcnow(), self.lease_s
                )
                if job is not None:
                    await self.work(job, stop)
            except Exception as exc:  # the lease runs out; this or another replica goes on
                hlog.get().warning("bulk_replay.failed", error=repr(exc)[:300])
            if job is None:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=POLL_S)

    async def work(self, job: Doc, stop: asyncio.Event) -> None:
        store, settings = self.ctx.store, self.ctx.settings
        doc = await store.get_connector(job["connector_id"])
        if doc is None:
            await self._advance(job, state="done", error="the connector was deleted")
            return
        done, skipped = job["done"], job.get("skipped", 0)
        saved = job.get("cursor")
        cursor: log_search.Cursor | None = (saved[0], saved[1]) if saved else None
        interval = 1.0 / job["rate_per_s"]
        next_at = last = time.monotonic()
        retention = retention_of(doc)
        subject = subjects.received(settings.prefix, doc["_id"])
        label = self.metrics.connector(doc["_id"])
        async for batch in _walk(self.ctx, doc, job, cursor):
            for row in batch:
                if stop.is_set():
                    await self._advance(
                        job, done=done, skipped=skipped, cursor=cursor, release=True
                    )
                    return
                # The walk reads summaries; the one event being replayed is read whole.
                whole = await store.get_event(doc["_id"], row["_id"]) if _replayable(row) else None
                if whole is not None:
                    try:
                        event = received_from_log(
                            whole,
                            job["version"],
                            event_id=replay_id(job["_id"], row["_id"]),
                            replay_of=row["_id"],
                            retention_days=retention,
                        )
                    except ApiError:  # no longer parses under today's bounds
                        skipped += 1
                    else:
                        await self.ctx.js.publish(
                            subject,
                            events.encode(event),
                            headers=natsio.msg_id_header(f"bulk:{job['_id']}:{row['_id']}"),
                        )
                        done += 1
                        self.metrics.bulk_replayed.labels(label).inc()
                cursor = (row["received_at"], row["_id"])
                next_at += interval
                if (wait := next_at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                else:
                    next_at = time.monotonic()  # no credit for time spent waiting on I/O
                if time.monotonic() - last >= PROGRESS_S:
                    last = time.monotonic()
                    if not await self._advance(job, done=done, skipped=skipped, cursor=cursor):
                        await self._settle(job, done=done, skipped=skipped, cursor=cursor)
                        return
        await self._advance(job, done=done, skipped=skipped, cursor=cursor, state="done")
        hlog.get().info("bulk_replay.done", job_id=job["_id"], done=done, skipped=skipped)

    async def _advance(
        self,
        job: Doc,
        *,
        state: str | None = None,
        release: bool = False,
        **fields: Any,
    ) -> bool:
        now = events.utcnow()
        update: Doc = dict(fields)
        if "cursor" in update:
            update["cursor"] = list(update["cursor"]) if update["cursor"] else None
        update["lease_until"] = now if release else now + timedelta(seconds=self.lease_s)
        if state is not None:
            update |= {"state": state, "finished_at": now, "expire_at": job["expire_at"]}
        return await self.ctx.store.advance_bulk_replay(job["_id"], self.owner, update)

    async def _settle(self, job: Doc, **fields: Any) -> None:
        """Cancelled (or taken over): record the last count and when it stopped, if the
        job is still this replica's."""
        fields |= {"finished_at": events.utcnow(), "cursor": list(fields["cursor"] or ())}
        if await self.ctx.store.advance_bulk_replay(job["_id"], self.owner, fields, running=False):
            hlog.get().info("bulk_replay.cancelled", job_id=job["_id"], done=fields["done"])


REPLAYER = web.AppKey("replayer", Replayer)


@contextlib.asynccontextmanager
async def replaying(
    app: web.Application, ctx: Context, metrics: ConfigMetrics
) -> AsyncIterator[Replayer]:
    """The API role's replayer, stopped with the app (its job handed back)."""
    replayer = Replayer(ctx, metrics)
    app[REPLAYER] = replayer
    async with background.loop_running(replayer.run, "bulk-replay", wake=replayer.wake):
        yield replayer


@routes.operation(
    "POST", CID + "/bulk-replay", "bulkReplay", "Replay the logged events a selection picks",
    tag="events", body=models.BulkReplay, status=202, returns=models.BulkReplayAccepted,
    errors=(404, 422),
    extra_responses=((200, "With `plan`: how many events it would replay", models.BulkReplayPlan),),
    description="By status (failed, dead_lettered or any), time range and values of the "
    "body, headers and custom variables. With `plan` it only counts; otherwise a job "
    "replays them in the background (`GET /api/v1/bulk-replays/{id}`), at most "
    "HOOKLINE_BULK_REPLAY_RATE_PER_S a second, each as a new event whose `replay_of` is "
    "the original. Events logged after the request are not selected.",
)  # fmt: skip
async def bulk_replay(request: web.Request, body: models.BulkReplay) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    version: int = doc["version"] if body.version is msgspec.UNSET else body.version
    if await ctx.store.get_version(doc["_id"], version) is None:
        raise ApiError(422, "invalid_version", f"version {version!r} is not among the kept ones")
    now = events.utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as MongoDB keeps it
    job: Doc = {
        "_id": events.new_id(),
        "connector_id": doc["_id"],
        "conditions": conditions_of(body),
        "after": None,
        "before": None,
        "created_at": now,
    }
    if body.received_after is not msgspec.UNSET:
        job["after"] = query_time(body.received_after, "received_after", status=422)
    if body.received_before is not msgspec.UNSET:
        job["before"] = query_time(body.received_before, "received_before", status=422)
    matched = 0
    async for batch in _walk(ctx, doc, job):
        matched += sum(1 for row in batch if _replayable(row))
    if body.plan:
        return web.json_response({"matched": matched}, status=200)
    days = retention_of(doc) or ctx.settings.log_retention_days
    job |= {
        "state": "running",
        "matched": matched,
        "done": 0,
        "skipped": 0,
        "version": version,
        "rate_per_s": ctx.settings.bulk_replay_rate_per_s,
        # As JSON text: a selection's numbers may be past BSON's int64.
        "selection": msgspec.json.encode(body).decode(),
        "cursor": None,
        "lease_owner": None,
        "lease_until": now - timedelta(seconds=1),
        "expire_at": now + timedelta(days=days),
    }
    await ctx.store.bulk_replays.insert_one(job)
    request.app[REPLAYER].wake.set()
    return web.json_response({"id": job["_id"], "matched": matched}, status=202)


async def _job_or_404(request: web.Request) -> Doc:
    job = await request.app[CTX].store.bulk_replays.find_one({"_id": request.match_info["id"]})
    if job is None:
        raise ApiError(404, "bulk_replay_not_found", "no such bulk replay")
    return job


@routes.operation(
    "GET", JOBS + "/{id}", "getBulkReplay", "A bulk replay's progress", tag="events",
    returns=models.BulkReplayJob, errors=(404,),
)  # fmt: skip
async def get_bulk_replay(request: web.Request) -> models.BulkReplayJob:
    return job_view(await _job_or_404(request))


@routes.operation(
    "DELETE", JOBS + "/{id}", "cancelBulkReplay", "Cancel a bulk replay", tag="events",
    returns=models.BulkReplayJob, errors=(404,),
    description="Events not yet replayed are not; those replayed stay. A finished job "
    "is answered as it is.",
)  # fmt: skip
async def cancel_bulk_replay(request: web.Request) -> models.BulkReplayJob:
    job = await _job_or_404(request)
    cancelled = await request.app[CTX].store.cancel_bulk_replay(job["_id"], events.utcnow())
    return job_view(cancelled or job)


@routes.operation(
    "GET", CID + "/bulk-replays", "listBulkReplays", "The connector's bulk replays",
    tag="events", returns=models.BulkReplayList, errors=(404,),
    description="Newest first, the last 50.",
)  # fmt: skip
async def list_bulk_replays(request: web.Request) -> models.BulkReplayList:
    doc = await connector_or_404(request)
    jobs = await request.app[CTX].store.list_bulk_replays(doc["_id"], 50)
    return models.BulkReplayList(items=[job_view(j) for j in jobs])
