"""Structure (F4: design and code views, manual replacement, remap from a logged event)
and the attribute listing (F5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import contacts, events, paths, references, structure
from libs.domain.connector import ConnectorConfig, FormatterStep, HttpStep, iter_steps
from libs.infra.http import ApiError
from services.config import models
from services.config.connectors_api import CID
from services.config.context import CTX, connector_or_404
from services.config.openapi import Routes

routes = Routes()


def _labelled(prefix: str, table: dict[str, tuple[str, str]]) -> list[models.Attribute]:
    return [
        models.Attribute(path=prefix + name, type=kind, label=label)
        for name, (kind, label) in table.items()
    ]


SYSTEM_ATTRIBUTES = _labelled("system.", contacts.SYSTEM_ATTRIBUTES)
REQUEST_ATTRIBUTES = _labelled("", events.METADATA_ROOTS)


def _view(
    doc: dict[str, Any], warnings: list[models.StructureWarning] | None = None
) -> models.Structure:
    s = structure.from_document(doc)
    updated_at = doc.get("updated_at")
    return models.Structure(
        sample=s.sample,
        schema=s.schema,
        fields=s.fields,
        truncated=s.truncated,
        from_event=doc.get("from_event"),
        updated_at=updated_at.isoformat() if isinstance(updated_at, datetime) else None,
        warnings=msgspec.UNSET if warnings is None else warnings,
    )


def unresolved(config: ConnectorConfig, new: structure.Structure) -> list[models.StructureWarning]:
    """Every mapping/step reference into the event that the new structure lacks."""
    known = {f.path for f in new.fields}
    return [
        models.StructureWarning(
            path=where, attribute=path, message=f"{path} is not in the new structure"
        )
        for where, path in references.event_references(config)
        if path not in known and not paths.exists(new.sample, path)
    ]


async def _replace(request: web.Request, document: Any, from_event: str | None) -> models.Structure:
    ctx = request.app[CTX]
    connector = await connector_or_404(request)
    try:
        new = structure.infer(document)
    except structure.StructureError as exc:
        raise ApiError(422, "invalid_sample", str(exc)) from None
    doc = structure.to_document(new, from_event=from_event) | {"updated_at": events.utcnow()}
    await ctx.store.replace_structure(connector["_id"], doc)
    config = msgspec.convert(connector["config"], ConnectorConfig)
    return _view(doc, unresolved(config, new))


@routes.operation(
    "GET", CID + "/structure", "getStructure", "The learned structure", tag="structure",
    returns=models.Structure, errors=(404,),
    description="404 `no_structure` until the first event is received.",
)  # fmt: skip
async def get_structure(request: web.Request) -> models.Structure:
    connector = await connector_or_404(request)
    doc = await request.app[CTX].store.get_structure(connector["_id"])
    if doc is None:
        raise ApiError(
            404, "no_structure", "no structure yet: it is learned from the first event received"
        )
    return _view(doc)


@routes.operation(
    "PUT", CID + "/structure", "replaceStructure", "Replace the code view by hand",
    tag="structure", returns=models.Structure, body=models.StructureReplace,
    errors=(404, 422), invalid="invalid_sample",
)  # fmt: skip
async def put_structure(request: web.Request, body: models.StructureReplace) -> models.Structure:
    """The code view replaced by hand: ``{"sample": <the event JSON>}``."""
    return await _replace(request, body.sample, None)


@routes.operation(
    "POST", CID + "/structure/from-event/{event_id}", "remapFromEvent",
    "Remap the structure from a logged event", tag="structure",
    returns=models.Structure, errors=(404, 422),
    description="`warnings` name every reference that no longer resolves.",
)  # fmt: skip
async def remap_from_event(request: web.Request) -> models.Structure:
    connector = await connector_or_404(request)
    row = await request.app[CTX].store.get_event(connector["_id"], request.match_info["event_id"])
    if row is None:
        raise ApiError(404, "event_not_found", "no such event in this connector's log")
    document = {"body": row.get("body"), "custom_variables": row.get("custom_variables") or {}}
    return await _replace(request, document, row["_id"])


@routes.operation(
    "GET", CID + "/attributes", "listConnectorAttributes",
    "Every attribute available to this connector, by kind", tag="structure",
    returns=models.ConnectorAttributes, errors=(404,),
)  # fmt: skip
async def attributes(request: web.Request) -> models.ConnectorAttributes:
    ctx = request.app[CTX]
    connector = await connector_or_404(request)
    doc = await ctx.store.get_structure(connector["_id"])
    event_attrs: list[models.Attribute] = []
    if doc is not None:
        event_attrs = [
            models.Attribute(path=f.path, type=f.type, example=f.example)
            for f in structure.from_document(doc).fields
        ]
    if not any(a.path == "custom_variables" for a in event_attrs):
        event_attrs.append(models.Attribute(path="custom_variables", type="object", example=None))
    event_attrs.extend(REQUEST_ATTRIBUTES)
    defined = await ctx.store.find("attributes", {}, limit=1000)
    subscriber = [
        models.Attribute(
            path=f"subscriber.{d['_id']}",
            type=d.get("type", "text"),
            label=d.get("description") or d["_id"],
        )
        for d in defined
    ]
    config = msgspec.convert(connector["config"], ConnectorConfig)
    formatter: list[models.Attribute] = []
    for step in iter_steps(config.steps):
        if isinstance(step, FormatterStep):
            formatter.append(
                models.Attribute(
                    path=f"formatter.{step.output}", type="any", step_id=step.id, op=step.op
                )
            )
        elif isinstance(step, HttpStep):
            formatter += [
                models.Attribute(
                    path=f"formatter.{step.id}.status", type="integer", step_id=step.id
                ),
                models.Attribute(path=f"formatter.{step.id}.body", type="any", step_id=step.id),
            ]
    return models.ConnectorAttributes(
        event=event_attrs, system=SYSTEM_ATTRIBUTES, subscriber=subscriber, formatter=formatter
    )
