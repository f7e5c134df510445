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
from libs.infra.settings import Settings
from services.config import models, snapshots, write_only
from services.config.context import CTX, Context, connector_or_404
from services.config.openapi import Routes
from services.config.validation import Known, validate

routes = Routes()
C = "/api/v1/connectors"
CID = C + "/{id}"


async def known_for(ctx: Context, connector_id: str | None) -> Known:
    """What validation checks references against: structure, channels, attributes."""
    known = Known()
    if connector_id is not None:
        doc = await ctx.store.get_structure(connector_id)
        if doc is not None:
            learned = structure.from_document(doc)
            known.fields = {f.path for f in learned.fields}
            known.sample = learned.sample
    channels = await ctx.store.find("channels", {}, limit=10000)
    known.channels = {d["_id"] for d in channels}
    known.channel_types = {d["_id"]: str(d.get("type", "")) for d in channels}
    known.subscriber = {
        str(d.get("name", d["_id"])) for d in await ctx.store.find("attributes", {}, limit=10000)
    }
    return known


def checked(config: ConnectorConfig | None, known: Known) -> ConnectorConfig:
    """A decoded configuration (None: the default) that validation accepts, else 422."""
    config = config if config is not None else ConnectorConfig()
    problems = validate(config, known)
    if problems:
        raise ApiError(
            422,
            "invalid_config",
            f"{len(problems)} problem(s) in the configuration",
            problems=[{"path": p, "message": m} for p, m in problems],
        )
    return config


def connector(settings: Settings, doc: dict[str, Any]) -> models.Connector:
    """The connector as the API shows it."""
    return models.Connector(
        id=doc["_id"],
        name=doc["name"],
        url=snapshots.url_of(settings, doc["token"]),
        version=doc["version"],
        config=write_only.shown(msgspec.convert(doc["config"], ConnectorConfig)),
        created_at=doc["created_at"].isoformat(),
        updated_at=doc["updated_at"].isoformat(),
        paused=bool(doc.get("paused")),
    )


@routes.operation(
    "POST", C, "createConnector", "Create a connector", tag="connectors", status=201,
    body=models.ConnectorCreate, returns=models.Connector, errors=(422,),
    invalid="invalid_config",
    description="Without `config`, the default configuration (answer 200 JSON, no "
    "mapping, no steps). 422 lists every problem of an invalid configuration.",
)  # fmt: skip
async def create(request: web.Request, body: models.ConnectorCreate) -> models.Connector:
    ctx = request.app[CTX]
    sent = None if body.config is None else write_only.kept(body.config, None)
    config = checked(sent, await known_for(ctx, None))
    now = events.utcnow()
    doc = {
        "_id": events.new_id(),
        "name": body.name.strip(),
        "token": snapshots.new_token(),
        "version": 1,
        "config": msgspec.to_builtins(config),
        "created_at": now,
        "updated_at": now,
    }
    await ctx.store.insert_connector(doc)
    await snapshots.publish(ctx.kv, doc)
    return connector(ctx.settings, doc)


@routes.operation(
    "GET", C, "listConnectors", "List connectors", tag="connectors",
    returns=models.ConnectorList,
)  # fmt: skip
async def list_(request: web.Request) -> models.ConnectorList:
    ctx = request.app[CTX]
    docs = await ctx.store.list_connectors()
    return models.ConnectorList(items=[connector(ctx.settings, d) for d in docs])


@routes.operation(
    "GET", CID, "getConnector", "Read a connector", tag="connectors",
    returns=models.Connector, errors=(404,),
)  # fmt: skip
async def get(request: web.Request) -> models.Connector:
    doc = await connector_or_404(request)
    return connector(request.app[CTX].settings, doc)


@routes.operation(
    "PUT", CID, "saveConnector", "Save the whole configuration (a new version)",
    tag="connectors", body=models.ConnectorSave, returns=models.Connector,
    errors=(404, 409, 422), invalid="invalid_config",
    description="Optimistic: `version` must be the latest (409 otherwise, nothing "
    "changes). 422 lists every problem with its JSON path.",
)  # fmt: skip
async def save(request: web.Request, body: models.ConnectorSave) -> models.Connector:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    stored = msgspec.convert(doc["config"], ConnectorConfig)
    sent = None if body.config is None else write_only.kept(body.config, stored)
    config = checked(sent, await known_for(ctx, doc["_id"]))
    changes: dict[str, Any] = {"config": msgspec.to_builtins(config)}
    if body.name is not msgspec.UNSET:
        changes["name"] = body.name.strip()
    if body.version != doc["version"]:
        raise _stale(doc["version"], body.version)
    try:
        saved = await ctx.store.save_config(doc["_id"], body.version, changes, events.utcnow())
    except StaleVersion:
        latest = await ctx.store.get_connector(doc["_id"])
        raise _stale(latest["version"] if latest else None, body.version) from None
    await snapshots.publish(ctx.kv, saved)
    return connector(ctx.settings, saved)


def _stale(latest: int | None, based_on: int) -> ApiError:
    return ApiError(
        409,
        "stale_version",
        f"this save is based on version {based_on} but the latest is {latest}; "
        "reload and save again",
        latest_version=latest,
    )


@routes.operation(
    "DELETE", CID, "deleteConnector", "Delete a connector", tag="connectors", status=204,
    errors=(404,),
)  # fmt: skip
async def delete(request: web.Request) -> None:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    await ctx.store.delete_connector(doc["_id"])
    await ctx.kv.delete(doc["_id"])


@routes.operation(
    "POST", CID + "/rotate-url", "rotateUrl", "Generate a new connecting URL",
    tag="connectors", returns=models.Connector, body=models.RotateUrl,
    body_required=False, errors=(404, 422),
    description="The old URL dies at once, or after `grace_seconds`.",
)  # fmt: skip
async def rotate(request: web.Request, body: models.RotateUrl) -> models.Connector:
    """A new token; the old one dies now or after ``grace_seconds`` (≤ 7 days)."""
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    fields: dict[str, Any] = {"token": snapshots.new_token(), "updated_at": events.utcnow()}
    if body.grace_seconds:
        fields["previous_token"] = doc["token"]
        fields["previous_token_until"] = events.utcnow() + timedelta(seconds=body.grace_seconds)
    else:
        fields["previous_token"] = None
        fields["previous_token_until"] = None
    updated = await ctx.store.set_fields(doc["_id"], fields)
    if updated is None:
        raise ApiError(404, "not_found", "connector not found")
    await snapshots.publish(ctx.kv, updated)
    return connector(ctx.settings, updated)


@routes.operation(
    "GET", CID + "/versions", "listVersions", "The kept versions, newest first",
    tag="connectors", returns=models.VersionList, errors=(404,),
)  # fmt: skip
async def versions(request: web.Request) -> models.VersionList:
    ctx = request.app[CTX]
    doc = await connector_or_404(request)
    rows = await ctx.store.list_versions(doc["_id"])
    items = [
        models.Version(
            version=r["version"],
            saved_at=r["saved_at"].isoformat(),
            config=write_only.shown(msgspec.convert(r["config"], ConnectorConfig)),
        )
        for r in rows
    ]
    return models.VersionList(items=items)


@routes.operation(
    "POST", CID + "/versions/{n}/restore", "restoreVersion",
    "Restore a kept version (as a new version)", tag="connectors",
    returns=models.Connector, errors=(400, 404, 409),
)  # fmt: skip
async def restore(request: web.Request) -> models.Connector:
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
    return connector(ctx.settings, saved)
