"""The event log (list, detail, replay) and per-connector stats (read, reset)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events, jsonvalue, search, templating
from libs.domain.bodies import BadRequest, parse_request
from libs.infra.http import ApiError
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from services.config import log_search, models, pausing
from services.config.connectors_api import CID, checked, known_for
from services.config.context import CTX, Context, connector_or_404
from services.config.openapi import Routes

routes = Routes()
EV = CID + "/events/{event_id}"


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": doc["_id"],
        "received_at": _iso(doc.get("received_at")),
        "status": doc.get("status"),
        "connector_version": doc.get("connector_version"),
        "error": doc.get("error"),
        "reason": doc.get("reason") or None,
        "replay_of": doc.get("replay_of"),
    }


def summary(doc: dict[str, Any]) -> models.EventSummary:
    return models.EventSummary(**_summary(doc))


def raw_body(raw: bytes | None) -> models.RawBody | None:
    """The exact bytes received: as text when they are UTF-8, else base64."""
    if raw is None:
        return None
    try:
        return models.RawBody(encoding="utf-8", data=raw.decode("utf-8"), size=len(raw))
    except UnicodeDecodeError:
        return models.RawBody(encoding="base64", data=base64.b64encode(raw).decode(), size=len(raw))


def detail(doc: dict[str, Any]) -> models.EventDetail:
    return models.EventDetail(
        **_summary(doc),
        request=doc.get("request"),
        raw_body=raw_body(doc.get("raw")),
        degraded=doc.get("degraded"),
        event=models.EventData(body=doc.get("body"), custom_variables=doc.get("custom_variables")),
        mapping=doc.get("mapping"),
        drift=doc.get("drift"),
        execution=doc.get("execution") or [],
        attempts=doc.get("attempts"),
        outcome_at=_iso(doc.get("outcome_at")),
        http_status=doc.get("http_status"),
        note=doc.get("note"),
        raw_truncated=bool(doc.get("raw_truncated")),
        dead_lettered=bool(doc.get("dead_lettered")),
        expire_at=_iso(doc.get("expire_at")),
    )


MAX_CONDITIONS = 10


def query_time(raw: str, name: str, status: int = 400) -> datetime:
    """An ISO 8601 time of a query (or, ``status`` 422, of a body), in UTC."""
    try:
        at = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ApiError(status, f"invalid_{name}", f"{name} must be an ISO 8601 time") from None
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999: the range's end is meant
        return (datetime.min if at.year == 1 else datetime.max).replace(tzinfo=UTC)


def search_conditions(params: Mapping[str, str]) -> list[list[search.Term]]:
    """The search-by-value parameters (``body.…``, ``headers.…``, ``custom_variables.…``)
    as search terms; 400 naming a bad one."""
    conditions = []
    for name, value in params.items():
        if not search.is_condition(name):
            continue
        try:
            conditions.append(search.condition(name, value))
        except search.SearchError as exc:
            raise ApiError(400, "invalid_search", str(exc)) from None
    if len(conditions) > MAX_CONDITIONS:
        raise ApiError(400, "invalid_search", f"at most {MAX_CONDITIONS} search parameters")
    return conditions


async def first_window_s(ctx: Context, doc: dict[str, Any]) -> float:
    """A time window of about log_search.TARGET of the connector's entries."""
    counters = await ctx.store.get_stats(doc["_id"])
    since = counters.get("since") or doc["created_at"]
    return log_search.first_window_s(counters["received"], since, events.utcnow())


def retention_of(doc: dict[str, Any]) -> float | None:
    """The connector's own log retention (None: the deployment's)."""
    days: float | None = (doc.get("config") or {}).get("retention_days")
    return days


def floor_of(doc: dict[str, Any]) -> datetime:
    """No entry of a connector is older than the connector."""
    created: datetime = doc["created_at"]
    return created - timedelta(seconds=1)


@routes.operation(
    "GET", CID + "/events", "listEvents", "The event log, newest first", tag="events",
    query=models.EventQuery, returns=models.EventList, errors=(400, 404),
    description="Search by value with `body.<path>=v`, `headers.<name>=v` and "
    "`custom_variables.<name>=v` (any number, all must hold; list positions ignored; "
    "values compared as text), with `status` and a time range.  A page reads at most "
    f"{log_search.MAX_EXAMINED} entries; when it stops short, `next_before` goes on.",
)  # fmt: skip
async def list_events(request: web.Request, query: models.EventQuery) -> models.EventList:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    conditions = search_conditions(request.query)
    if query.status is not msgspec.UNSET:
        conditions.append(search.condition("status", query.status))
    start: log_search.Cursor | None = None
    after = None
    if query.received_after is not msgspec.UNSET:
        after = query_time(query.received_after, "received_after")
    before = None
    if query.received_before is not msgspec.UNSET:
        before = query_time(query.received_before, "received_before")
    if query.before is not msgspec.UNSET:
        # An ISO time, or the opaque cursor "<time>,<event id>" of a previous page.
        raw, _, before_id = query.before.partition(",")
        at = query_time(raw, "before")
        if before_id:
            start = (at, before_id)
        else:
            before = at if before is None else min(before, at)
    selection = log_search.Selection(conditions=conditions, after=after, before=before)
    page = await log_search.newest(
        ctx.store,
        doc["_id"],
        selection,
        floor=floor_of(doc),
        now=events.utcnow(),
        window_s=await first_window_s(ctx, doc),
        limit=query.limit,
        start=start,
    )
    cursor = page.cursor
    return models.EventList(
        items=[summary(r) for r in page.rows],
        next_before=f"{_iso(cursor[0])},{cursor[1]}" if cursor else None,
    )


async def logged_event_or_404(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The path's connector and one event of its log (404 for either unknown)."""
    doc = await connector_or_404(request)
    row = await request.app[CTX].store.get_event(doc["_id"], request.match_info["event_id"])
    if row is None:
        raise ApiError(404, "event_not_found", "no such event in this connector's log")
    return doc, row


@routes.operation(
    "GET", EV, "getEvent", "One logged event with its execution log", tag="events",
    returns=models.EventDetail, errors=(404,),
)  # fmt: skip
async def get_event(request: web.Request) -> models.EventDetail:
    _, row = await logged_event_or_404(request)
    return detail(row)


@routes.operation(
    "POST", EV + "/replay", "replayEvent", "Run a logged event again", tag="events",
    status=202, returns=models.ReplayAccepted, body=models.Replay, body_required=False,
    errors=(404, 422),
    description="A new event (`replay_of` links it) through the whole pipeline, "
    "against the current or a chosen kept version.",
)  # fmt: skip
async def replay(request: web.Request, body: models.Replay) -> models.ReplayAccepted:
    """Run a logged event again as a new event (``replay_of`` links it), through the
    whole pipeline, against the current or a chosen kept version."""
    ctx = request.app[CTX]
    doc, row = await logged_event_or_404(request)
    version: int = doc["version"] if body.version is msgspec.UNSET else body.version
    if await ctx.store.get_version(doc["_id"], version) is None:
        raise ApiError(422, "invalid_version", f"version {version!r} is not among the kept ones")
    event = received_from_log(
        row, version, event_id=events.new_id(), replay_of=row["_id"],
        retention_days=retention_of(doc),
    )  # fmt: skip
    await ctx.js.publish(
        subjects.received(ctx.settings.prefix, doc["_id"]),
        events.encode(event),
        headers=natsio.msg_id_header(event.event_id),
    )
    return models.ReplayAccepted(event_id=event.event_id, replay_of=row["_id"], version=version)


def received_from_log(
    row: dict[str, Any],
    version: int,
    *,
    event_id: str,
    replay_of: str | None,
    retention_days: float | None = None,
) -> events.EventReceived:
    """A logged event as it was received (for replays and dry-runs): the raw bytes
    parsed again (the record), or the parsed body of an entry from before raw bodies."""
    if row.get("status") in events.REQUEST_STATUSES:
        # Refused at the door (or a handshake): running it now would let it in.
        raise ApiError(
            422, "not_an_event", f"a {row['status']} request is logged, not an event to run"
        )
    request = msgspec.convert(row["request"], events.Request)
    raw: bytes | None = row.get("raw")
    body = row.get("body")
    if raw is not None:
        try:
            body = parse_request(request.content_type, raw)
        except BadRequest as exc:  # accepted once, refused now: the bounds changed
            raise ApiError(
                422, "unparseable_event", f"the event's body no longer parses: {exc.message}"
            ) from None
    return events.EventReceived(
        event_id=event_id,
        connector_id=row["connector_id"],
        connector_version=version,
        occurred_at=events.utcnow(),
        correlation_id=row.get("correlation_id") or row["_id"],
        request=request,
        body=body,
        custom_variables=row.get("custom_variables") or {},
        replay_of=replay_of,
        raw=raw,
        retention_days=retention_days,
    )


@routes.operation(
    "POST", EV + "/response-preview", "previewResponse",
    "Render a Map Response against a logged event", tag="events",
    body=models.ResponsePreview, returns=models.ResponsePreviewResult, errors=(404, 422),
    description="The answer that event's sender would get with this `response` (saved or "
    "not): the same templates, sandbox and bounds as ingest.",
)  # fmt: skip
async def preview_response(
    request: web.Request, body: models.ResponsePreview
) -> models.ResponsePreviewResult:
    doc, row = await logged_event_or_404(request)
    event = received_from_log(row, doc["version"], event_id=row["_id"], replay_of=None)
    cfg = body.response
    if cfg.body is None:  # ingest's default answer
        default = {"event_id": event.event_id, "status": "stored"}
        return models.ResponsePreviewResult(
            status=cfg.status,
            content_type="application/json",
            body=msgspec.json.encode(default).decode(),
        )
    try:
        text = templating.render(cfg.body, event.context()).text
    except templating.TemplateError as exc:
        fallback = msgspec.json.encode({"event_id": event.event_id}).decode()
        return models.ResponsePreviewResult(
            status=cfg.status, content_type="application/json", body=fallback, error=str(exc)
        )
    return models.ResponsePreviewResult(status=cfg.status, content_type=cfg.content_type, body=text)


DRY_RUN_TIMEOUT_S = 10.0


@routes.operation(
    "POST", EV + "/dry-run", "dryRunEvent",
    "Run a logged event through a configuration without side effects", tag="events",
    returns=models.DryRunResult, body=models.DryRun, body_required=False,
    errors=(404, 422), extra_responses=((503, "No executor answered", models.Error),),
    description="Every step is evaluated; actions are rendered, not sent.",
)  # fmt: skip
async def dry_run(request: web.Request, body: models.DryRun) -> models.DryRunResult:
    """Run a logged event through a configuration without side effects: every step is
    evaluated, actions are rendered but not sent; returns the execution log.

    Body (optional): ``{"version": n}`` for a kept version, or ``{"config": {...}}`` to
    try an unsaved configuration; default: the current one."""
    ctx = request.app[CTX]
    doc, row = await logged_event_or_404(request)
    version = doc["version"]
    if body.config is not msgspec.UNSET:
        config = msgspec.to_builtins(checked(body.config, await known_for(ctx, doc["_id"])))
    elif body.version is not msgspec.UNSET:
        kept = await ctx.store.get_version(doc["_id"], body.version)
        if kept is None:
            raise ApiError(422, "invalid_version", "version is not among the kept ones")
        version, config = body.version, kept["config"]
    else:
        config = doc["config"]
    received = received_from_log(row, version, event_id=row["_id"], replay_of=None)
    mapping = row.get("mapping") or {"status": "disabled", "reason": "not mapped"}
    mapped = events.EventMapped(
        event_id=row["_id"],
        connector_id=doc["_id"],
        connector_version=version,
        occurred_at=events.utcnow(),
        correlation_id=received.correlation_id,
        received=received,
        mapping=msgspec.convert(mapping, events.MappingResult),
    )
    payload = events.encode(events.DryRunRequest(config=config, event=mapped))
    try:
        reply = await ctx.nc.request(
            subjects.dry_run(ctx.settings.prefix), payload, timeout=DRY_RUN_TIMEOUT_S
        )
    except Exception:
        raise ApiError(503, "executor_unavailable", "no executor answered the dry-run") from None
    result = jsonvalue.decode(reply.data)
    if "steps" not in result:
        raise ApiError(422, "dry_run_failed", str(result["error"]))
    return models.DryRunResult(
        event_id=row["_id"],
        version=version,
        status=result["status"],
        error=result.get("error"),
        execution=msgspec.convert(result["steps"], list[events.StepLog]),
    )


async def _stats(doc: dict[str, Any], ctx: Context) -> models.Stats:
    counters = await ctx.store.get_stats(doc["_id"])
    since = _iso(counters.pop("since")) or doc["created_at"].isoformat()
    held = await pausing.held_count(ctx, doc["_id"])
    return models.Stats(**counters, since=since, paused=bool(doc.get("paused")), held=held)


@routes.operation(
    "GET", CID + "/stats", "getStats", "Counters since creation or the last reset",
    tag="stats", returns=models.Stats, errors=(404,),
)  # fmt: skip
async def stats(request: web.Request) -> models.Stats:
    doc = await connector_or_404(request)
    return await _stats(doc, request.app[CTX])


@routes.operation(
    "POST", CID + "/stats/reset", "resetStats", "Start counting again", tag="stats",
    returns=models.Stats, errors=(404,),
)  # fmt: skip
async def reset(request: web.Request) -> models.Stats:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    await ctx.store.reset_stats(doc["_id"], events.utcnow())
    return await _stats(doc, ctx)
