"""Structure (F4: design and code views, manual replacement, remap from a logged event)
and the attribute listing (F5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events, paths, references, structure
from libs.domain.connector import ConnectorConfig, FormatterStep, HttpStep, iter_steps
from libs.infra.http import ApiError
from services.config.context import CTX, body_json, connector_or_404

routes = web.RouteTableDef()

SYSTEM_ATTRIBUTES = [
    {"path": "system.name", "type": "string", "label": "Contact name"},
    {"path": "system.email", "type": "string", "label": "Contact email"},
    {"path": "system.mobile", "type": "string", "label": "Contact mobile (E.164)"},
    {"path": "system.time_zone", "type": "string", "label": "Contact time zone"},
    {"path": "system.current_time", "type": "string", "label": "Current time (ISO 8601, UTC)"},
]
REQUEST_ATTRIBUTES = [
    {"path": "method", "type": "string", "label": "HTTP method"},
    {"path": "headers", "type": "object", "label": "Request headers (lower-case names)"},
    {"path": "query", "type": "object", "label": "Query string parameters"},
    {"path": "source_ip", "type": "string", "label": "Sender's address"},
    {"path": "received_at", "type": "string", "label": "Receive time (ISO 8601)"},
    {"path": "event_id", "type": "string", "label": "Event id"},
]


def _view(doc: dict[str, Any], warnings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    s = structure.from_document(doc)
    out: dict[str, Any] = {
        "sample": s.sample,
        "schema": s.schema,
        "fields": msgspec.to_builtins(s.fields),
        "truncated": s.truncated,
        "from_event": doc.get("from_event"),
        "updated_at": doc["updated_at"].isoformat()
        if isinstance(doc.get("updated_at"), datetime)
        else None,
    }
    if warnings is not None:
        out["warnings"] = warnings
    return out


def unresolved(config: ConnectorConfig, new: structure.Structure) -> list[dict[str, str]]:
    """Every mapping/step reference into the event that the new structure lacks."""
    known = {f.path for f in new.fields}
    warnings = []
    for where, path in references.event_references(config):
        if path in known or paths.exists(new.sample, path):
            continue
        warnings.append(
            {"path": where, "attribute": path, "message": f"{path} is not in the new structure"}
        )
    return warnings


async def _replace(request: web.Request, document: Any, from_event: str | None) -> web.Response:
    ctx = request.app[CTX]
    connector = await connector_or_404(request)
    try:
        new = structure.infer(document)
    except structure.StructureError as exc:
        raise ApiError(422, "invalid_sample", str(exc)) from None
    doc = structure.to_document(new, from_event=from_event) | {"updated_at": events.utcnow()}
    await ctx.store.replace_structure(connector["_id"], doc)
    config = msgspec.convert(connector["config"], ConnectorConfig)
    return web.json_response(_view(doc, unresolved(config, new)))


@routes.get("/api/v1/connectors/{id}/structure")
async def get_structure(request: web.Request) -> web.Response:
    connector = await connector_or_404(request)
    doc = await request.app[CTX].store.get_structure(connector["_id"])
    if doc is None:
        raise ApiError(
            404, "no_structure", "no structure yet: it is learned from the first event received"
        )
    return web.json_response(_view(doc))


@routes.put("/api/v1/connectors/{id}/structure")
async def put_structure(request: web.Request) -> web.Response:
    """The code view replaced by hand: ``{"sample": <the event JSON>}``."""
    body = await body_json(request)
    if "sample" not in body:
        raise ApiError(
            422, "sample_required", 'send {"sample": {"body": ..., "custom_variables": {...}}}'
        )
    return await _replace(request, body["sample"], None)


@routes.post("/api/v1/connectors/{id}/structure/from-event/{event_id}")
async def remap_from_event(request: web.Request) -> web.Response:
    connector = await connector_or_404(request)
    row = await request.app[CTX].store.get_event(connector["_id"], request.match_info["event_id"])
    if row is None:
        raise ApiError(404, "event_not_found", "no such event in this connector's log")
    document = {"body": row.get("body"), "custom_variables": row.get("custom_variables") or {}}
    return await _replace(request, document, row["_id"])


@routes.get("/api/v1/connectors/{id}/attributes")
async def attributes(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    connector = await connector_or_404(request)
    doc = await ctx.store.get_structure(connector["_id"])
    event_attrs: list[dict[str, Any]] = []
    if doc is not None:
        event_attrs = [
            {"path": f.path, "type": f.type, "example": f.example}
            for f in structure.from_document(doc).fields
        ]
    if not any(a["path"] == "custom_variables" for a in event_attrs):
        event_attrs.append({"path": "custom_variables", "type": "object", "example": None})
    event_attrs.extend(REQUEST_ATTRIBUTES)
    defined = await ctx.store.find("attributes", {}, limit=1000)
    subscriber = [
        {
            "path": f"subscriber.{d['_id']}",
            "type": d.get("type", "text"),
            "label": d.get("description") or d["_id"],
        }
        for d in defined
    ]
    config = msgspec.convert(connector["config"], ConnectorConfig)
    formatter: list[dict[str, Any]] = []
    for step in iter_steps(config.steps):
        if isinstance(step, FormatterStep):
            formatter.append(
                {
                    "path": f"formatter.{step.output}",
                    "type": "any",
                    "step_id": step.id,
                    "op": step.op,
                }
            )
        elif isinstance(step, HttpStep):
            formatter.append(
                {"path": f"formatter.{step.id}.status", "type": "integer", "step_id": step.id}
            )
            formatter.append(
                {"path": f"formatter.{step.id}.body", "type": "any", "step_id": step.id}
            )
    return web.json_response(
        {
            "event": event_attrs,
            "system": SYSTEM_ATTRIBUTES,
            "subscriber": subscriber,
            "formatter": formatter,
        }
    )
