"""The CRM's objects: subscriber attribute definitions (F5), channels and agents (F8).

MongoDB is the source of truth for all three.  Channels are also mirrored, secrets
included, into the internal ``<prefix>_channels`` KV bucket that the executor
watches (``libs.infra.nats.channel_registry``); the API itself never returns a secret whole.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
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
from libs.domain.contacts import normalize_email
from libs.domain.redaction import is_redacted
from libs.infra import logging as hlog
from libs.infra.http import ApiError
from libs.infra.nats.channel_registry import (
    delete_channel,
    ensure_channels_bucket,
    publish_channel,
    republish_all_channels,
)
from services.config import decoding, models
from services.config.context import CTX, Context
from services.config.openapi import Routes

routes = Routes()

CHANNEL_ID = re.compile(models.CHANNEL_ID)
PHONE_NUMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALL = 0  # Store.find limit: 0 means no limit
MAX_NAME = models.MAX_NAME

Problem = tuple[str, str]


def _invalid(code: str, problems: list[Problem]) -> ApiError:
    """422 whose message lists every problem; ``problems`` carries them with their path."""
    return ApiError(
        422,
        code,
        "; ".join(f"{path}: {message}" for path, message in problems),
        problems=[{"path": path, "message": message} for path, message in problems],
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ====================================================================== keyed rows


@dataclass(frozen=True)
class Kind:
    """A CRM collection whose rows are keyed by ``_id``: ``named`` says how an error
    names one ("a channel with id 'x'")."""

    collection: str
    named: str
    exists: str  # the 409 code

    def missing(self, key: str) -> ApiError:
        return ApiError(404, "not_found", f"no {self.named} {key!r}")

    async def all(self, request: web.Request) -> list[dict[str, Any]]:
        docs = await request.app[CTX].store.find(self.collection, {}, limit=ALL)
        return sorted(docs, key=lambda d: str(d["_id"]))

    async def one(self, request: web.Request, key: str) -> dict[str, Any]:
        doc = await request.app[CTX].store.find_one(self.collection, {"_id": key})
        if doc is None:
            raise self.missing(key)
        return doc

    async def insert(self, request: web.Request, doc: dict[str, Any]) -> None:
        try:
            await request.app[CTX].store.insert(self.collection, doc)
        except DuplicateKeyError:
            article = "an" if self.named[0] in "aeiou" else "a"
            raise ApiError(
                409, self.exists, f"{article} {self.named} {doc['_id']!r} exists"
            ) from None

    async def delete(self, request: web.Request, key: str) -> None:
        if not await request.app[CTX].store.delete(self.collection, {"_id": key}):
            raise self.missing(key)


ATTRIBUTES = Kind("attributes", "subscriber attribute named", "attribute_exists")
AGENTS = Kind("agents", "agent with email", "agent_exists")
CHANNELS = Kind("channels", "channel with id", "channel_exists")

# ====================================================================== attributes

A = "/api/v1/attributes"


def _attribute(doc: dict[str, Any]) -> models.SubscriberAttribute:
    return models.SubscriberAttribute(
        name=doc["_id"],
        type=doc["type"],
        description=doc.get("description", ""),
        created_at=_iso(doc.get("created_at")),
    )


@routes.operation(
    "GET", A, "listSubscriberAttributes", "Subscriber attribute definitions", tag="crm",
    returns=models.SubscriberAttributeList,
)  # fmt: skip
async def list_attributes(request: web.Request) -> models.SubscriberAttributeList:
    return models.SubscriberAttributeList([_attribute(d) for d in await ATTRIBUTES.all(request)])


@routes.operation(
    "POST", A, "createSubscriberAttribute", "Define a subscriber attribute", tag="crm",
    status=201, returns=models.SubscriberAttribute, body=models.SubscriberAttributeCreate,
    errors=(409, 422), invalid="invalid_attribute",
)  # fmt: skip
async def create_attribute(
    request: web.Request, body: models.SubscriberAttributeCreate
) -> models.SubscriberAttribute:
    doc = {
        "_id": body.name,
        "name": body.name,
        "type": body.type,
        "description": body.description or "",
        "created_at": events.utcnow(),
    }
    await ATTRIBUTES.insert(request, doc)
    return _attribute(doc)


@routes.operation(
    "GET", A + "/{name}", "getSubscriberAttribute", "Read a subscriber attribute", tag="crm",
    returns=models.SubscriberAttribute, errors=(404,),
)  # fmt: skip
async def get_attribute(request: web.Request) -> models.SubscriberAttribute:
    return _attribute(await ATTRIBUTES.one(request, request.match_info["name"]))


@routes.operation(
    "DELETE", A + "/{name}", "deleteSubscriberAttribute", "Delete a subscriber attribute",
    tag="crm", status=204, errors=(404,),
)  # fmt: skip
async def delete_attribute(request: web.Request) -> None:
    await ATTRIBUTES.delete(request, request.match_info["name"])


# ====================================================================== channels


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
        if is_redacted(getattr(channel, field, None)):
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
                elif is_redacted(value):
                    problems.append((f"$.headers.{key}", "is a redacted value ('…')"))
    return problems


def decode_channel(raw: dict[str, Any]) -> Channel:
    """A channel from an API body (id already set), or a 422 that says what is wrong."""
    channel: Channel = decoding.decode(Channel, raw, "invalid_channel")  # type: ignore[arg-type]
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
        stale = [f for f in stale if f not in body or is_redacted(body[f])]
        if isinstance(stored, HttpChannel) and stored.headers:
            sent = body.get("headers")
            if not isinstance(sent, dict) or any(is_redacted(v) for v in sent.values()):
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
            field not in merged or is_redacted(merged[field])
        ):
            merged[field] = getattr(stored, field)
    if isinstance(stored, HttpChannel):
        headers = merged.get("headers")
        if "headers" not in merged:
            merged["headers"] = dict(stored.headers)
        elif isinstance(headers, dict):
            kept: dict[str, Any] = {}
            for key, value in headers.items():
                if is_redacted(value):
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
    await republish_all_channels(ctx.js, ctx.settings, channels)


async def _stored_channel(request: web.Request) -> Channel:
    return channel_from_doc(await CHANNELS.one(request, request.match_info["id"]))


CH = "/api/v1/channels"


def _view(channel: Channel) -> Channel:
    """The channel as the API shows it: secrets redacted."""
    view: Channel = msgspec.convert(redacted(channel), Channel)  # type: ignore[arg-type]
    return view


@routes.operation(
    "GET", CH, "listChannels", "Channels (secrets redacted)", tag="crm",
    returns=models.ChannelList,
)  # fmt: skip
async def list_channels(request: web.Request) -> models.ChannelList:
    docs = await CHANNELS.all(request)
    return models.ChannelList([_view(channel_from_doc(d)) for d in docs])


@routes.operation(
    "POST", CH, "createChannel", "Add a channel", tag="crm", status=201,
    returns=models.ChannelView, body=models.ChannelCreate, errors=(409, 422),
    invalid="invalid_channel",
)  # fmt: skip
async def create_channel(request: web.Request, body: msgspec.Struct) -> Channel:
    ctx = request.app[CTX]
    fields = msgspec.to_builtins(body)
    if fields.get("id") is None:
        fields["id"] = "ch_" + secrets.token_hex(8)
    channel = decode_channel(fields)
    await CHANNELS.insert(request, _channel_doc(channel))
    await publish_channel(await _channels_kv(ctx), channel)
    return _view(channel)


@routes.operation(
    "GET", CH + "/{id}", "getChannel", "Read a channel (secrets redacted)", tag="crm",
    returns=models.ChannelView, errors=(404,),
)  # fmt: skip
async def get_channel(request: web.Request) -> Channel:
    return _view(await _stored_channel(request))


@routes.operation(
    "PUT", CH + "/{id}", "replaceChannel", "Replace a channel", tag="crm",
    returns=models.ChannelView, body=models.ChannelReplace, raw_body=True,
    errors=(404, 422), invalid="invalid_channel",
)  # fmt: skip
async def replace_channel(request: web.Request, body: dict[str, Any]) -> Channel:
    """Replace the whole channel; secrets omitted or sent redacted keep their stored value."""
    ctx = request.app[CTX]
    stored = await _stored_channel(request)
    if body.get("id", stored.id) != stored.id:
        raise _invalid("invalid_channel", [("$.id", "differs from the id in the URL")])
    stored_type = _type_of(stored)
    kind = body.setdefault("type", stored_type)
    if kind != stored_type and kind in models.CHANNEL_REPLACE:
        raise ApiError(
            422,
            "channel_type_change",
            f"channel {stored.id!r} is a {stored_type} channel; its type cannot change "
            "(create a new channel instead)",
        )
    sent = msgspec.to_builtins(decoding.decode(models.ChannelReplace, body, "invalid_channel"))
    channel = decode_channel(keep_stored_secrets(sent | {"id": stored.id}, stored))
    result = await ctx.store.channels.replace_one({"_id": channel.id}, _channel_doc(channel))
    if result.matched_count == 0:  # deleted meanwhile
        raise CHANNELS.missing(channel.id)
    await publish_channel(await _channels_kv(ctx), channel)
    return _view(channel)


@routes.operation(
    "DELETE", CH + "/{id}", "deleteChannel", "Delete a channel", tag="crm", status=204,
    errors=(404, 409),
    description="409 `channel_in_use` names the connectors whose configuration uses it.",
)  # fmt: skip
async def delete_channel_(request: web.Request) -> None:
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
    await CHANNELS.delete(request, channel.id)
    await delete_channel(await _channels_kv(ctx), channel.id)


# ====================================================================== agents

AG = "/api/v1/agents"


def _agent(doc: dict[str, Any]) -> models.Agent:
    return models.Agent(
        email=doc["_id"], name=doc.get("name", ""), created_at=_iso(doc.get("created_at"))
    )


@routes.operation(
    "GET", AG, "listAgents", "Agents (contact owners)", tag="crm", returns=models.AgentList,
)  # fmt: skip
async def list_agents(request: web.Request) -> models.AgentList:
    return models.AgentList([_agent(d) for d in await AGENTS.all(request)])


@routes.operation(
    "POST", AG, "createAgent", "Add an agent", tag="crm", status=201, returns=models.Agent,
    body=models.AgentCreate, errors=(409, 422), invalid="invalid_agent",
)  # fmt: skip
async def create_agent(request: web.Request, body: models.AgentCreate) -> models.Agent:
    email = normalize_email(body.email)  # the rule owner assignment matches by, too
    # AgentCreate's pattern is that rule's (EMAIL_INPUT_PATTERN), so it always holds.
    assert email is not None
    doc = {
        "_id": email,
        "email": email,
        "name": (body.name or "").strip(),
        "created_at": events.utcnow(),
    }
    await AGENTS.insert(request, doc)
    return _agent(doc)


def _path_email(request: web.Request) -> str:
    return request.match_info["email"].strip().lower()


@routes.operation(
    "GET", AG + "/{email}", "getAgent", "Read an agent", tag="crm", returns=models.Agent,
    errors=(404,),
)  # fmt: skip
async def get_agent(request: web.Request) -> models.Agent:
    return _agent(await AGENTS.one(request, _path_email(request)))


@routes.operation(
    "DELETE", AG + "/{email}", "deleteAgent", "Delete an agent", tag="crm", status=204,
    errors=(404,),
)  # fmt: skip
async def delete_agent(request: web.Request) -> None:
    await AGENTS.delete(request, _path_email(request))
