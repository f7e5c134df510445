"""Connector documents → KV snapshots, and publishing them to KV (the API views are
``services.config.models``)."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from libs.domain.connector import ConnectorConfig, ConnectorSnapshot
from libs.infra.nats.kvkeys import live_keys
from libs.infra.settings import Settings

_encode = msgspec.json.Encoder().encode


def new_token() -> str:
    """192 bits from the OS's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(24)


def url_of(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/c/{token}"


def snapshot(doc: dict[str, Any]) -> ConnectorSnapshot:
    until = doc.get("previous_token_until")
    return ConnectorSnapshot(
        id=doc["_id"],
        name=doc["name"],
        token=doc["token"],
        version=doc["version"],
        config=msgspec.convert(doc["config"], ConnectorConfig),
        previous_token=doc.get("previous_token"),
        previous_token_until=until.timestamp() if until is not None else None,
        paused=bool(doc.get("paused")),
    )


async def publish(kv: KeyValue, doc: dict[str, Any]) -> None:
    await kv.put(doc["_id"], _encode(snapshot(doc)))


async def republish_all(
    js: JetStreamContext, kv: KeyValue, bucket: str, docs: list[dict[str, Any]]
) -> None:
    """Make KV equal to Mongo (the source of truth): put every connector, drop strays."""
    for doc in docs:
        await publish(kv, doc)
    wanted = {d["_id"] for d in docs}
    for key in await live_keys(js, bucket, skip=wanted):
        await kv.delete(key)
