"""What every config API handler needs, in one typed app key, and small request helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from nats.js.kv import KeyValue

from libs.domain import jsonvalue
from libs.infra.http import ApiError
from libs.infra.mongo import store as hmongo
from libs.infra.nats import client as natsio
from libs.infra.settings import Settings


@dataclass
class Context:
    settings: Settings
    store: hmongo.Store
    nc: natsio.Client
    js: natsio.JetStreamContext
    kv: KeyValue
    # Pull subscriptions the projector role opened, unsubscribed before NATS drains.
    subs: list[natsio.JetStreamContext.PullSubscription] = field(default_factory=list)


CTX = web.AppKey("ctx", Context)


async def body_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object body; a clear 400/415 when it is not one."""
    if not request.body_exists:
        if optional:
            return {}
        raise ApiError(400, "body_required", "a JSON object body is required")
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()
    try:
        body = jsonvalue.loads(raw)  # exact integers; lone surrogates are refused here
    except jsonvalue.JsonError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return body


async def connector_or_404(request: web.Request) -> dict[str, Any]:
    doc = await request.app[CTX].store.get_connector(request.match_info["id"])
    if doc is None:
        raise ApiError(404, "not_found", "connector not found")
    return doc
