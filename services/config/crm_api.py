"""The CRM's objects: subscriber attribute definitions (F5), channels and agents (F8).

MongoDB is the source of truth for all three.  Channels are also mirrored, secrets
included, into the internal ``<prefix>_channels`` KV bucket that the executor
watches (``libs.infra.nats.channel_registry``); the API itself never returns a secret whole.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web
from nats.js.kv import KeyValue
from pymongo.errors import DuplicateKeyError

from libs.domain import events
from libs.domain.channels import (
    SECRET_FIELDS,
    Channel,
    HttpChannel,
    SmtpChannel,
    WhatsAppChannel,
    redacted,
)
from libs.domain.connector import ConnectorConfig, EmailStep, HttpStep, WhatsAppStep, iter_steps
from libs.infra import logging as hlog
from libs.infra.http import ApiError
from libs.infra.nats.channel_registry import (
    delete_channel,
    ensure_channels_bucket,
    publish_channel,
    republish_all_channels,
)
from services.config.context import CTX, Context, body_json

routes = web.RouteTableDef()

ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
ATTRIBUTE_TYPES = ("text", "number", "date", "boolean")
CHANNEL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CHANNEL_TYPES = ("whatsapp", "email", "http")
PHONE_NUMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
REDACTED = "…"  # what libs.domain.channels.redacted() puts in front of a secret's tail
ALL = 0  # Store.find limit: 0 means no limit
MAX_NAME = 200
MAX_DESCRIPTION = 1000

Problem = tuple[str, str]


def _invalid(code: str, problems: list[Problem]) -> ApiError:
    """422 whose message lists every problem; ``problems`` carries them with their path."""
    return ApiError(
        422,
        code,
        "; ".join(f"{path}: {message}" for path, message in problems),
        problems=[{"path": path, "message": message} for path, message in problems],
    )


def _unknown_fields(body: dict[str, Any], allowed: Iterable[str]) -> list[Problem]:
    return [(f"$.{key}", "unknown field") for key in sorted(set(body) - set(allowed))]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ====================================================================== attributes


def _attribute_doc(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    problems = _unknown_fields(body, ("name", "type", "description"))
    name = body.get("name")
    if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
        problems.append(
            (
                "$.name",
                "must be a lower-case letter followed by up to 63 lower-case letters, "
                "digits or underscores (e.g. city, plan_2)",
            )
        )
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in ATTRIBUTE_TYPES:
        problems.append(("$.type", f"must be one of {', '.join(ATTRIBUTE_TYPES)}"))
    description = body.get("description")
    if description is None:
        description = ""
    elif not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems.append(("$.description", f"must be a string of ≤ {MAX_DESCRIPTION} characters"))
    if problems:
        raise _invalid("invalid_attribute", problems)
    return {"_id": name, "name": name, "type": kind, "description": description, "created_at": now}


def _attribute_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": doc["_id"],
        "type": doc["type"],
        "description": doc.get("description", ""),
        "created_at": _iso(doc.get("created_at")),
    }


@routes.get("/api/v1/attributes")
async def list_attributes(request: web.Request) -> web.Response:
    docs = await request.app[CTX].store.find("attributes", {}, limit=ALL)
    docs.sort(key=lambda d: d["_id"])
    return web.json_response({"items": [_attribute_view(d) for d in docs]})


@routes.post("/api/v1/attributes")
async def create_attribute(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = _attribute_doc(await body_json(request), events.utcnow())
    try:
        await ctx.store.insert("attributes", doc)
    except DuplicateKeyError:
        raise ApiError(
            409, "attribute_exists", f"a subscriber attribute named {doc['_id']!r} exists"
        ) from None
    return web.json_response(_attribute_view(doc), status=201)


async def _attribute_or_404(request: web.Request) -> dict[str, Any]:
    name = request.match_info["name"]
    doc = await request.app[CTX].store.find_one("attributes", {"_id": name})
    if doc is None:
        raise ApiError(404, "not_found", f"no subscriber attribute named {name!r}")
    return doc


@routes.get("/api/v1/attributes/{name}")
async def get_attribute(request: web.Request) -> web.Response:
    return web.json_response(_attribute_view(await _attribute_or_404(request)))


@routes.delete("/api/v1/attributes/{name}")
async def delete_attribute(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not await request.app[CTX].store.delete("attributes", {"_id": name}):
        raise ApiError(404, "not_found", f"no subscriber attribute named {name!r}")
    return web.Response(status=204)


# ====================================================================== channels


def _is_redacted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(REDACTED)


def _split_validation_error(exc: msgspec.ValidationError) -> Problem:
    """msgspec says "Expected `int`, got `str` - at `$.port`": (path, what)."""
    text = str(exc)
    what, sep, where = text.rpartition(" - at `")
    if sep and where.endswith("`"):
        return where[:-1], what
    return "$", text


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    return None


def _no_line_breaks(value: str) -> bool:
    return "\r" not in value and "\n" not in value


def check_channel(channel: Channel) -> list[Problem]:
    """What msgspec's types cannot say: formats, ranges, pasted redacted secrets."""
    problems: list[Problem] = []
    if not CHANNEL_ID.fullmatch(channel.id):
        problems.append(("$.id", "must be 1-64 characters: letters, digits, '_' or '-'"))
    if len(channel.name) > MAX_NAME:
        problems.append(("$.name", f"must be ≤ {MAX_NAME} characters"))
    for field in SECRET_FIELDS:
        if _is_redacted(getattr(channel, field, None)):
            problems.append(
                (f"$.{field}", "is a redacted value ('…'); send the real secret or omit it")
            )
    match channel:
        case WhatsAppChannel():
            if not PHONE_NUMBER_ID.fullmatch(channel.phone_number_id):
                problems.append(
                    ("$.phone_number_id", "must be the Cloud API phone number id (e.g. 1234567890)")
                )
            if not channel.access_token.strip():
                problems.append(("$.access_token", "must not be empty"))
            issue = _url_problem(channel.api_base)
            if issue:
                problems.append(("$.api_base", issue))
        case SmtpChannel():
            if not channel.host.strip() or not _no_line_breaks(channel.host):
                problems.append(("$.host", "must be the SMTP server's host name"))
            if not 1 <= channel.port <= 65535:
                problems.append(("$.port", "must be a TCP port (1..65535)"))
            if "@" not in channel.from_address or not _no_line_breaks(channel.from_address):
                problems.append(
                    ("$.from_address", "must be an email address (optionally 'Name <a@b.c>')")
                )
            if not 0 < channel.timeout_s <= 300:
                problems.append(("$.timeout_s", "must be in (0, 300] seconds"))
        case HttpChannel():
            if channel.base_url:
                issue = _url_problem(channel.base_url)
                if issue:
                    problems.append(("$.base_url", issue))
            for key, value in channel.headers.items():
                if not key or not _no_line_breaks(key) or not _no_line_breaks(value):
                    problems.append((f"$.headers.{key}", "header names/values need no line breaks"))
                elif _is_redacted(value):
                    problems.append((f"$.headers.{key}", "is a redacted value ('…')"))
    return problems


def decode_channel(raw: dict[str, Any]) -> Channel:
    """A channel from an API body (id already set), or a 422 that says what is wrong."""
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CHANNEL_TYPES:
        raise _invalid(
            "invalid_channel", [("$.type", f"must be one of {', '.join(CHANNEL_TYPES)}")]
        )
    try:
        channel: Channel = msgspec.convert(raw, Channel)
    except msgspec.ValidationError as exc:
        raise _invalid("invalid_channel", [_split_validation_error(exc)]) from None
    problems = check_channel(channel)
    if problems:
        raise _invalid("invalid_channel", problems)
    return channel


def keep_stored_secrets(body: dict[str, Any], stored: Channel) -> dict[str, Any]:
    """A PUT body with omitted or redacted secrets replaced by the stored ones.

    So a client can send back what GET showed it.  ``null`` clears an optional
    secret (an SMTP password); a header sent as ``"…"`` keeps its stored value.
    """
    merged = dict(body)
    moved = [
        f
        for f in _DESTINATION.get(_type_of(stored), ())
        if f in body and body[f] != getattr(stored, f)
    ]
    if moved:
        # Whoever can change where a secret goes must know it: a stolen admin session
        # must not be able to point stored credentials at its own server.
        stale = [f for f in SECRET_FIELDS if f in stored.__struct_fields__ and getattr(stored, f)]
        stale = [f for f in stale if f not in body or _is_redacted(body[f])]
        if isinstance(stored, HttpChannel) and stored.headers:
            sent = body.get("headers")
            if not isinstance(sent, dict) or any(_is_redacted(v) for v in sent.values()):
                stale.append("headers")
        if stale:
            raise _invalid(
                "secret_required",
                [
                    (f"$.{f}", f"send it again: {', '.join(moved)} changes where it is sent")
                    for f in stale
                ],
            )
    for field in SECRET_FIELDS:
        if field in stored.__struct_fields__ and (
            field not in merged or _is_redacted(merged[field])
        ):
            merged[field] = getattr(stored, field)
    if isinstance(stored, HttpChannel):
        headers = merged.get("headers")
        if "headers" not in merged:
            merged["headers"] = dict(stored.headers)
        elif isinstance(headers, dict):
            kept: dict[str, Any] = {}
            for key, value in headers.items():
                if _is_redacted(value):
                    if key not in stored.headers:
                        problem = "is redacted ('…') but no such header is stored"
                        raise _invalid("invalid_channel", [(f"$.headers.{key}", problem)])
                    kept[key] = stored.headers[key]
                else:
                    kept[key] = value
            merged["headers"] = kept
    return merged


# The fields that say where a channel's secrets are sent.
_DESTINATION = {
    "email": ("host", "port"),
    "http": ("base_url",),
    "whatsapp": ("api_base",),
}


def _type_of(channel: Channel) -> str:
    return str(channel.__struct_config__.tag)


def channel_from_doc(doc: dict[str, Any]) -> Channel:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    channel: Channel = msgspec.convert(fields, Channel)
    return channel


def _channel_doc(channel: Channel) -> dict[str, Any]:
    return {"_id": channel.id, **msgspec.to_builtins(channel)}


def connectors_using(channel_id: str, docs: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Connectors whose current configuration names ``channel_id`` as a fixed channel:
    an action step's ``channel`` (branches included) or the mapping's default channel.
    (A ``channel_from`` attribute is resolved per event and cannot be checked here.)"""
    using: list[dict[str, str]] = []
    for doc in docs:
        try:
            config = msgspec.convert(doc.get("config") or {}, ConnectorConfig)
        except msgspec.ValidationError as exc:
            hlog.get().error("connectors.bad_config", connector_id=doc.get("_id"), error=str(exc))
            continue
        uses = config.mapping is not None and config.mapping.channel == channel_id
        for step in iter_steps(config.steps):
            if isinstance(step, EmailStep | WhatsAppStep | HttpStep) and step.channel == channel_id:
                uses = True
        if uses:
            using.append({"id": doc["_id"], "name": doc.get("name", "")})
    return using


async def _channels_kv(ctx: Context) -> KeyValue:
    # One JetStream round trip; channel edits are rare operator actions.
    return await ensure_channels_bucket(ctx.js, ctx.settings)


async def republish_channels(ctx: Context) -> None:
    """Make the channels bucket equal to Mongo (run at config start-up)."""
    channels: list[Channel] = []
    for doc in await ctx.store.find("channels", {}, limit=ALL):
        try:
            channels.append(channel_from_doc(doc))
        except msgspec.ValidationError as exc:
            # Left out of KV on purpose: an action on it fails loudly, not with stale data.
            hlog.get().error("channels.bad_document", channel_id=doc.get("_id"), error=str(exc))
    await republish_all_channels(await _channels_kv(ctx), channels)


async def _stored_channel(request: web.Request) -> Channel:
    channel_id = request.match_info["id"]
    doc = await request.app[CTX].store.find_one("channels", {"_id": channel_id})
    if doc is None:
        raise ApiError(404, "not_found", f"no channel with id {channel_id!r}")
    return channel_from_doc(doc)


@routes.get("/api/v1/channels")
async def list_channels(request: web.Request) -> web.Response:
    docs = await request.app[CTX].store.find("channels", {}, limit=ALL)
    docs.sort(key=lambda d: d["_id"])
    return web.json_response({"items": [redacted(channel_from_doc(d)) for d in docs]})


@routes.post("/api/v1/channels")
async def create_channel(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await body_json(request)
    if body.get("id") is None:
        body["id"] = "ch_" + secrets.token_hex(8)
    elif not isinstance(body["id"], str) or not CHANNEL_ID.fullmatch(body["id"]):
        raise _invalid(
            "invalid_channel", [("$.id", "must be 1-64 characters: letters, digits, '_' or '-'")]
        )
    channel = decode_channel(body)
    try:
        await ctx.store.insert("channels", _channel_doc(channel))
    except DuplicateKeyError:
        raise ApiError(409, "channel_exists", f"a channel with id {channel.id!r} exists") from None
    await publish_channel(await _channels_kv(ctx), channel)
    return web.json_response(redacted(channel), status=201)


@routes.get("/api/v1/channels/{id}")
async def get_channel(request: web.Request) -> web.Response:
    return web.json_response(redacted(await _stored_channel(request)))


@routes.put("/api/v1/channels/{id}")
async def replace_channel(request: web.Request) -> web.Response:
    """Replace the whole channel; secrets omitted or sent redacted keep their stored value."""
    ctx = request.app[CTX]
    stored = await _stored_channel(request)
    body = await body_json(request)
    if body.get("id", stored.id) != stored.id:
        raise _invalid("invalid_channel", [("$.id", "differs from the id in the URL")])
    body["id"] = stored.id
    stored_type = _type_of(stored)
    body.setdefault("type", stored_type)
    if body["type"] != stored_type and body["type"] in CHANNEL_TYPES:
        raise ApiError(
            422,
            "channel_type_change",
            f"channel {stored.id!r} is a {stored_type} channel; its type cannot change "
            "(create a new channel instead)",
        )
    channel = decode_channel(keep_stored_secrets(body, stored))
    result = await ctx.store.channels.replace_one({"_id": channel.id}, _channel_doc(channel))
    if result.matched_count == 0:  # deleted meanwhile
        raise ApiError(404, "not_found", f"no channel with id {channel.id!r}")
    await publish_channel(await _channels_kv(ctx), channel)
    return web.json_response(redacted(channel))


@routes.delete("/api/v1/channels/{id}")
async def delete_channel_(request: web.Request) -> web.Response:
    """Refused (409) while a connector's current configuration names the channel."""
    ctx = request.app[CTX]
    channel = await _stored_channel(request)
    using = connectors_using(channel.id, await ctx.store.list_connectors())
    if using:
        names = ", ".join(f"{c['name']!r} ({c['id']})" for c in using)
        raise ApiError(
            409,
            "channel_in_use",
            f"channel {channel.id!r} is used by {len(using)} connector(s): {names}; "
            "change their configuration first",
            connectors=using,
        )
    if not await ctx.store.delete("channels", {"_id": channel.id}):
        raise ApiError(404, "not_found", f"no channel with id {channel.id!r}")
    await delete_channel(await _channels_kv(ctx), channel.id)
    return web.Response(status=204)


# ====================================================================== agents


def _email(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    return email if len(email) <= 254 and EMAIL.fullmatch(email) else None


def _agent_doc(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    problems = _unknown_fields(body, ("email", "name"))
    email = _email(body.get("email"))
    if email is None:
        problems.append(("$.email", "must be an email address (name@example.com)"))
    name = body.get("name")
    if name is None:
        name = ""
    elif not isinstance(name, str) or len(name) > MAX_NAME:
        problems.append(("$.name", f"must be a string of ≤ {MAX_NAME} characters"))
    if problems:
        raise _invalid("invalid_agent", problems)
    return {"_id": email, "email": email, "name": name.strip(), "created_at": now}


def _agent_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "email": doc["_id"],
        "name": doc.get("name", ""),
        "created_at": _iso(doc.get("created_at")),
    }


@routes.get("/api/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    docs = await request.app[CTX].store.find("agents", {}, limit=ALL)
    docs.sort(key=lambda d: d["_id"])
    return web.json_response({"items": [_agent_view(d) for d in docs]})


@routes.post("/api/v1/agents")
async def create_agent(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = _agent_doc(await body_json(request), events.utcnow())
    try:
        await ctx.store.insert("agents", doc)
    except DuplicateKeyError:
        raise ApiError(409, "agent_exists", f"an agent with email {doc['_id']!r} exists") from None
    return web.json_response(_agent_view(doc), status=201)


def _path_email(request: web.Request) -> str:
    return request.match_info["email"].strip().lower()


@routes.get("/api/v1/agents/{email}")
async def get_agent(request: web.Request) -> web.Response:
    email = _path_email(request)
    doc = await request.app[CTX].store.find_one("agents", {"_id": email})
    if doc is None:
        raise ApiError(404, "not_found", f"no agent with email {email!r}")
    return web.json_response(_agent_view(doc))


@routes.delete("/api/v1/agents/{email}")
async def delete_agent(request: web.Request) -> web.Response:
    email = _path_email(request)
    if not await request.app[CTX].store.delete("agents", {"_id": email}):
        raise ApiError(404, "not_found", f"no agent with email {email!r}")
    return web.Response(status=204)
