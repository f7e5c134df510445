"""Connectors: create, list, read, save (versioned), delete, rotate URL, versions, restore."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events, structure
from libs.domain.connector import ConnectorConfig
from libs.infra.http import ApiError
from libs.infra.mongo.store import StaleVersion
from services.config import snapshots
from services.config.context import CTX, Context, body_json, connector_or_404
from services.config.validation import Known, validate

routes = web.RouteTableDef()


async def known_for(ctx: Context, connector_id: str | None) -> Known:
    """What validation checks references against: structure, channels, attributes."""
    known = Known()
    if connector_id is not None:
        doc = await ctx.store.get_structure(connector_id)
        if doc is not None:
            learned = structure.from_document(doc)
            known.fields = {f.path for f in learned.fields}
            known.sample = learned.sample
    known.channels = {d["_id"] for d in await ctx.store.find("channels", {}, limit=10000)}
    known.subscriber = {
        str(d.get("name", d["_id"])) for d in await ctx.store.find("attributes", {}, limit=10000)
    }
    return known


def parse_config(raw: Any, known: Known) -> ConnectorConfig:
    try:
        config = msgspec.convert(raw if raw is not None else {}, ConnectorConfig)
    except msgspec.ValidationError as exc:
        raise ApiError(
            422,
            "invalid_config",
            "the configuration is invalid",
            problems=[{"path": "$.config", "message": str(exc)}],
        ) from None
    problems = validate(config, known)
    if problems:
        raise ApiError(
            422,
            "invalid_config",
            f"{len(problems)} problem(s) in the configuration",
            problems=[{"path": p, "message": m} for p, m in problems],
        )
    return config


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
        raise ApiError(422, "invalid_name", "name must be a non-empty string of ≤ 200 characters")
    return raw.strip()


@routes.post("/api/v1/connectors")
async def create(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await body_json(request)
    config = parse_config(body.get("config"), await known_for(ctx, None))
    now = events.utcnow()
    doc = {
        "_id": events.new_id(),
        "name": _name(body.get("name")),
        "token": snapshots.new_token(),
        "version": 1,
        "config": msgspec.to_builtins(config),
        "created_at": now,
        "updated_at": now,
    }
    await ctx.store.insert_connector(doc)
    await snapshots.publish(ctx.kv, doc)
    return web.json_response(snapshots.view(ctx.settings, doc), status=201)


@routes.get("/api/v1/connectors")
async def list_(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    docs = await ctx.store.list_connectors()
    return web.json_response({"items": [snapshots.view(ctx.settings, d) for d in docs]})


@routes.get("/api/v1/connectors/{id}")
async def get(request: web.Request) -> web.Response:
    doc = await connector_or_404(request)
    return web.json_response(snapshots.view(request.app[CTX].settings, doc))


@routes.put("/api/v1/connectors/{id}")
async def save(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    body = await body_json(request)
    based_on = body.get("version")
    if not isinstance(based_on, int) or isinstance(based_on, bool):
        raise ApiError(
            422,
            "version_required",
            "the body must carry the integer `version` this save is based on",
        )
    config = parse_config(body.get("config"), await known_for(ctx, doc["_id"]))
    changes: dict[str, Any] = {"config": msgspec.to_builtins(config)}
    if "name" in body:
        changes["name"] = _name(body["name"])
    if based_on != doc["version"]:
        raise _stale(doc["version"], based_on)
    try:
        saved = await ctx.store.save_config(doc["_id"], based_on, changes, events.utcnow())
    except StaleVersion:
        latest = await ctx.store.get_connector(doc["_id"])
        raise _stale(latest["version"] if latest else None, based_on) from None
    await snapshots.publish(ctx.kv, saved)
    return web.json_response(snapshots.view(ctx.settings, saved))


def _stale(latest: int | None, based_on: int) -> ApiError:
    return ApiError(
        409,
        "stale_version",
        f"this save is based on version {based_on} but the latest is {latest}; "
        "reload and save again",
        latest_version=latest,
    )


@routes.delete("/api/v1/connectors/{id}")
async def delete(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    await ctx.store.delete_connector(doc["_id"])
    await ctx.kv.delete(doc["_id"])
    return web.Response(status=204)


@routes.post("/api/v1/connectors/{id}/rotate-url")
async def rotate(request: web.Request) -> web.Response:
    """A new token; the old one dies now or after ``grace_seconds`` (≤ 7 days)."""
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    body = await body_json(request, optional=True)
    grace = body.get("grace_seconds", 0)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= 7 * 86400:
        raise ApiError(422, "invalid_grace", "grace_seconds must be an integer in 0..604800")
    fields: dict[str, Any] = {"token": snapshots.new_token(), "updated_at": events.utcnow()}
    if grace:
        fields["previous_token"] = doc["token"]
        fields["previous_token_until"] = events.utcnow() + timedelta(seconds=grace)
    else:
        fields["previous_token"] = None
        fields["previous_token_until"] = None
    updated = await ctx.store.set_token(doc["_id"], fields)
    if updated is None:
        raise ApiError(404, "not_found", "connector not found")
    await snapshots.publish(ctx.kv, updated)
    return web.json_response(snapshots.view(ctx.settings, updated))


@routes.get("/api/v1/connectors/{id}/versions")
async def versions(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    rows = await ctx.store.list_versions(doc["_id"])
    items = [
        {"version": r["version"], "saved_at": r["saved_at"].isoformat(), "config": r["config"]}
        for r in rows
    ]
    return web.json_response({"items": items})


@routes.post("/api/v1/connectors/{id}/versions/{n}/restore")
async def restore(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    try:
        number = int(request.match_info["n"])
    except ValueError:
        raise ApiError(400, "invalid_version", "version must be an integer") from None
    if not 1 <= number <= 2**63 - 1:
        raise ApiError(404, "version_not_found", f"version {number} is not among the kept ones")
    row = await ctx.store.get_version(doc["_id"], number)
    if row is None:
        raise ApiError(404, "version_not_found", f"version {number} is not among the kept ones")
    try:
        saved = await ctx.store.save_config(
            doc["_id"], doc["version"], {"config": row["config"]}, events.utcnow()
        )
    except StaleVersion:
        raise ApiError(409, "stale_version", "a save happened meanwhile; try again") from None
    await snapshots.publish(ctx.kv, saved)
    return web.json_response(snapshots.view(ctx.settings, saved))
