"""The event log (list, detail, replay) and per-connector stats (read, reset)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events, jsonvalue
from libs.domain.bodies import BadRequest, parse_request
from libs.infra.http import ApiError
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from services.config.connectors_api import known_for, parse_config
from services.config.context import CTX, body_json, connector_or_404, int_param

routes = web.RouteTableDef()

STATUSES = {"received", "succeeded", "failed"}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": doc["_id"],
        "received_at": _iso(doc.get("received_at")),
        "status": doc.get("status"),
        "connector_version": doc.get("connector_version"),
        "error": doc.get("error"),
    }


def raw_body(raw: bytes | None) -> dict[str, Any] | None:
    """The exact bytes received: as text when they are UTF-8, else base64."""
    if raw is None:
        return None
    try:
        return {"encoding": "utf-8", "data": raw.decode("utf-8"), "size": len(raw)}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(raw).decode(), "size": len(raw)}


def detail(doc: dict[str, Any]) -> dict[str, Any]:
    return summary(doc) | {
        "request": doc.get("request"),
        "raw_body": raw_body(doc.get("raw")),
        "degraded": doc.get("degraded"),
        "event": {"body": doc.get("body"), "custom_variables": doc.get("custom_variables")},
        "mapping": doc.get("mapping"),
        "drift": doc.get("drift"),
        "execution": doc.get("execution") or [],
        "attempts": doc.get("attempts"),
        "replay_of": doc.get("replay_of"),
        "outcome_at": _iso(doc.get("outcome_at")),
    }


@routes.get("/api/v1/connectors/{id}/events")
async def list_events(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_status", f"status must be one of {sorted(STATUSES)}")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "invalid_limit", "limit must be an integer") from None
    if not 1 <= limit <= 500:
        raise ApiError(400, "invalid_limit", "limit must be in 1..500")
    before, before_id = None, None
    if request.query.get("before"):
        # An ISO time, or the opaque cursor "<time>,<event id>" of a previous page.
        raw, _, before_id_raw = request.query["before"].partition(",")
        try:
            before = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00"))
            if before.tzinfo is not None:
                before = before.astimezone(UTC)
        except (ValueError, OverflowError):
            raise ApiError(400, "invalid_before", "before must be an ISO 8601 time") from None
        before_id = before_id_raw or None
    rows = await ctx.store.list_events(
        doc["_id"], status=status, before=before, limit=limit, before_id=before_id
    )
    items = [summary(r) for r in rows]
    next_before = (
        f"{items[-1]['received_at']},{items[-1]['event_id']}" if len(items) == limit else None
    )
    return web.json_response({"items": items, "next_before": next_before})


async def logged_event_or_404(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The path's connector and one event of its log (404 for either unknown)."""
    doc = await connector_or_404(request)
    row = await request.app[CTX].store.get_event(doc["_id"], request.match_info["event_id"])
    if row is None:
        raise ApiError(404, "event_not_found", "no such event in this connector's log")
    return doc, row


@routes.get("/api/v1/connectors/{id}/events/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    _, row = await logged_event_or_404(request)
    return web.json_response(detail(row))


@routes.post("/api/v1/connectors/{id}/events/{event_id}/replay")
async def replay(request: web.Request) -> web.Response:
    """Run a logged event again as a new event (``replay_of`` links it), through the
    whole pipeline, against the current or a chosen kept version."""
    ctx = request.app[CTX]
    doc, row = await logged_event_or_404(request)
    body = await body_json(request, optional=True)
    version = int_param(body.get("version", doc["version"]), "version")
    if await ctx.store.get_version(doc["_id"], version) is None:
        raise ApiError(422, "invalid_version", f"version {version!r} is not among the kept ones")
    event = received_from_log(row, version, event_id=events.new_id(), replay_of=row["_id"])
    await ctx.js.publish(
        subjects.received(ctx.settings.prefix, doc["_id"]),
        events.encode(event),
        headers=natsio.msg_id_header(event.event_id),
    )
    return web.json_response(
        {"event_id": event.event_id, "replay_of": row["_id"], "version": version}, status=202
    )


def received_from_log(
    row: dict[str, Any], version: int, *, event_id: str, replay_of: str | None
) -> events.EventReceived:
    """A logged event as it was received (for replays and dry-runs): the raw bytes
    parsed again (the record), or the parsed body of an entry from before raw bodies."""
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
    )


DRY_RUN_TIMEOUT_S = 10.0


@routes.post("/api/v1/connectors/{id}/events/{event_id}/dry-run")
async def dry_run(request: web.Request) -> web.Response:
    """Run a logged event through a configuration without side effects: every step is
    evaluated, actions are rendered but not sent; returns the execution log.

    Body (optional): ``{"version": n}`` for a kept version, or ``{"config": {...}}`` to
    try an unsaved configuration; default: the current one."""
    ctx = request.app[CTX]
    doc, row = await logged_event_or_404(request)
    body = await body_json(request, optional=True)
    version = doc["version"]
    if "config" in body:
        config = msgspec.to_builtins(parse_config(body["config"], await known_for(ctx, doc["_id"])))
    elif "version" in body:
        kept = await ctx.store.get_version(doc["_id"], int_param(body["version"], "version"))
        if kept is None:
            raise ApiError(422, "invalid_version", "version is not among the kept ones")
        version, config = body["version"], kept["config"]
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
    return web.json_response(
        {
            "event_id": row["_id"],
            "version": version,
            "status": result["status"],
            "error": result.get("error"),
            "execution": result["steps"],
            "dry_run": True,
        }
    )


@routes.get("/api/v1/connectors/{id}/stats")
async def stats(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    counters = await ctx.store.get_stats(doc["_id"])
    counters["since"] = _iso(counters["since"]) or doc["created_at"].isoformat()
    return web.json_response(counters)


@routes.post("/api/v1/connectors/{id}/stats/reset")
async def reset(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    await ctx.store.reset_stats(doc["_id"], events.utcnow())
    counters = await ctx.store.get_stats(doc["_id"])
    counters["since"] = _iso(counters["since"])
    return web.json_response(counters)
