"""The ingest service: ``/c/{token}`` stores each webhook in JetStream, then answers.

Answers 2xx only after JetStream acknowledged the publish; 503 when it cannot.
Connectors are read from the in-memory registry (KV watch), never from Mongo.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from multidict import CIMultiDictProxy

from libs.domain import addresses, events, handshakes, paths, templating
from libs.domain.bodies import BadRequest, parse_query, parse_request
from libs.domain.connector import ConnectorSnapshot
from libs.infra import logging as hlog
from libs.infra.http import error
from libs.infra.metrics import add_ops_routes, metrics_listener
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.nats.registry import Registry
from libs.infra.settings import Settings
from services.ingest.metrics import IngestMetrics
from services.ingest.peers import Peers
from services.ingest.ratelimit import TokenBuckets
from services.ingest.sources import Source

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", IngestMetrics)
REGISTRY = web.AppKey("registry", Registry)
NATS = web.AppKey("nats", natsio.Client)
JS = web.AppKey("js", natsio.JetStreamContext)
PUBLISHER = web.AppKey("publisher", natsio.AckPublisher)
PEERS = web.AppKey("peers", Peers)

PUBLISH_TIMEOUT_S = 5.0
# Notices of rejected and duplicate requests per connector and second: a flood of bad
# requests cannot fill the log stream (past this they are counted in metrics only).
NOTICES_PER_S = 20.0
# Headers that carry credentials are not kept in the event log: these, and any whose
# name says it holds a key, token, secret or password (x-api-key, x-auth-token, …).
_REDACT = {"authorization", "cookie", "proxy-authorization", "set-cookie"}
_SECRET_NAME = re.compile(r"api[-_]?key|token|secret|passw|session|credential")


def _clean(text: str) -> str:
    """Header bytes that are not UTF-8 arrive as lone surrogates; keep them visible."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _headers(raw: CIMultiDictProxy[str], secret: str | None = None) -> dict[str, str]:
    """The headers as logged; ``secret`` names one more that holds a credential (the
    connector's api_key header, whatever it is called)."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        k, value = _clean(key.lower()), _clean(value)
        if k in _REDACT or k == secret or _SECRET_NAME.search(k):
            value = "[redacted]"
        out[k] = f"{out[k]}, {value}" if k in out else value
    return out


async def _read_raw(request: web.Request, limit: int) -> bytes:
    """The whole body, however it arrives (segments, chunked, gzip/deflate decoded by
    aiohttp in bounded steps); 413 as soon as more than ``limit`` bytes came in."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in request.content.iter_any():
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except (HttpProcessingError, RequestPayloadError) as exc:  # bad gzip, bad chunking
        cause = exc.__cause__ if isinstance(exc, RequestPayloadError) else exc
        reason = getattr(cause, "message", "") or str(cause)
        raise BadRequest(400, "invalid_body", f"body could not be read: {reason}") from None
    return b"".join(chunks)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")


_encode = msgspec.json.Encoder().encode


def _response(
    snap: ConnectorSnapshot, event: events.EventReceived, duplicate: bool
) -> web.Response:
    cfg = snap.config.response
    if cfg.body is None:
        payload = {"event_id": event.event_id, "status": "duplicate" if duplicate else "stored"}
        # msgspec and a plain Response: a third of json_response's cost on the hot path.
        return web.Response(
            body=_encode(payload), status=cfg.status, content_type="application/json"
        )
    try:
        text = templating.render(cfg.body, event.context()).text
    except templating.TemplateError as exc:
        # The event is stored; a broken reply template must not turn that into a 5xx.
        hlog.get().warning("ingest.response_template_failed", error=str(exc))
        return web.json_response({"event_id": event.event_id}, status=cfg.status)
    return web.Response(
        text=text, status=cfg.status, content_type=None, headers={"Content-Type": cfg.content_type}
    )


class Seen:
    """What ingest read of a request before it answered: kept with a refusal's log entry."""

    def __init__(self, request: web.Request) -> None:
        self.raw: bytes | None = None
        self.client: str | None = request.remote
        self.custom: dict[str, Any] = {}
        self.secret_header: str | None = None


def _handshake_response(reply: handshakes.Reply) -> web.Response:
    headers = {"Content-Type": reply.content_type, "X-Content-Type-Options": "nosniff"}
    return web.Response(body=reply.body, status=reply.status, content_type=None, headers=headers)


class Ingest:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.settings = app[SETTINGS]
        self.metrics = app[METRICS]
        self.buckets = TokenBuckets()
        self.notice_buckets = TokenBuckets()
        self.source = Source(
            public_url=self.settings.public_url.rstrip("/"),
            trusted=addresses.networks(self.settings.trusted_proxy_list),
        )
        self._background: set[asyncio.Task[Any]] = set()

    async def handle(self, request: web.Request) -> web.Response:
        snap = self.app[REGISTRY].by_token(request.match_info["token"])
        if snap is None:
            self.metrics.count("unknown", 404)
            return error(404, "not_found", "no connector has this URL (unknown or rotated)")
        seen = Seen(request)
        try:
            response = await self._accept(request, snap, seen)
        except BadRequest as exc:
            self.metrics.rejected.labels(self.metrics.connector(snap.id), exc.code).inc()
            self._notice(snap, "rejected", exc.message, exc.status, exc.code, request, seen)
            response = error(exc.status, exc.code, exc.message)
        except Exception:  # a bug: answer JSON (the sender retries), log it, don't die
            hlog.get().exception("ingest.unhandled", connector_id=snap.id)
            response = error(500, "internal", "internal error; the event was not stored")
        self.metrics.count(snap.id, response.status)
        return response

    async def _accept(
        self, request: web.Request, snap: ConnectorSnapshot, seen: Seen
    ) -> web.Response:
        config = snap.config
        seen.client = self.source.client(request)
        seen.custom = custom = parse_query(request.rel_url.raw_query_string)
        check = config.verification
        if check is not None and check.scheme == "api_key":
            seen.secret_header = check.header.lower() if check.header else None
            if check.query_param:  # a credential: not a custom variable, not logged
                custom.pop(check.query_param, None)
        self.source.check_address(config, seen.client)
        rate = config.rate_limit_per_s
        share = rate / self.app[PEERS].count if rate else 0.0  # the limit holds across all
        if rate and not self.buckets.allow(snap.id, share, time.monotonic()):
            raise BadRequest(429, "rate_limited", f"over the connector's limit of {rate}/s")
        limit = config.max_body_bytes or self.settings.max_body_bytes
        seen.raw = raw = await _read_raw(request, limit)
        reply = self.source.handshake(config, request, raw, signed=False)
        source_id = None
        if reply is None:
            source_id = self.source.verify(config, request, raw, time.time())
            reply = self.source.handshake(config, request, raw, signed=True)
        if reply is not None:
            assert config.handshake is not None
            kind = config.handshake.kind
            self.metrics.handshakes.labels(self.metrics.connector(snap.id)).inc()
            self._notice(snap, "handshake", reply.note, reply.status, kind, request, seen)
            return _handshake_response(reply)
        content_type = request.headers.get(hdrs.CONTENT_TYPE)
        content_type = None if content_type is None else _clean(content_type)
        body = parse_request(content_type, raw)
        size = len(raw)
        self.metrics.body_bytes.observe(size)
        event_id = events.new_id()
        event = events.EventReceived(
            event_id=event_id,
            connector_id=snap.id,
            connector_version=snap.version,
            occurred_at=events.utcnow(),
            correlation_id=request.headers.get("X-Correlation-Id") or event_id,
            request=self._record(request, seen, content_type, size),
            body=body,
            raw=raw,
            custom_variables=custom,
            retention_days=snap.config.retention_days,
        )
        key = self._idempotency_key(snap, event)
        if key is not None:
            event = msgspec.structs.replace(event, idempotency_key=key)
            msg_id = f"{snap.id}:{key}"
        elif source_id is not None:
            # The sender's own message id (webhook-id, X-GitHub-Delivery, Stripe's event
            # id…): a replayed or re-sent message inside the window is a duplicate.
            msg_id = f"{snap.id}:source:{source_id}"
        else:
            msg_id = event_id
        payload = events.encode(event)
        if len(payload) > self.app[NATS].max_payload:
            # Raw bytes + parsed body + headers past the broker's message size: a bound,
            # refused as one (a 503 would have the sender retry it forever).
            raise BadRequest(
                413,
                "payload_too_large",
                f"the event ({len(payload)} bytes with its parsed body) exceeds the broker's "
                f"message limit of {self.app[NATS].max_payload} bytes",
            )
        started = time.perf_counter()
        try:
            duplicate = await self.app[PUBLISHER].publish(
                subjects.received(self.settings.prefix, snap.id),
                payload,
                msg_id=msg_id,
                timeout_s=PUBLISH_TIMEOUT_S,
            )
        except Exception as exc:
            self.metrics.store_failures.inc()
            hlog.get().warning("ingest.store_failed", connector_id=snap.id, error=repr(exc))
            return error(503, "unavailable", "the event could not be stored; retry later")
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        if duplicate:
            self.metrics.duplicates.labels(self.metrics.connector(snap.id)).inc()
            seen_before = (
                f"idempotency key {key!r}" if key is not None else f"message id {source_id!r}"
            )
            self._notice(snap, "duplicate", f"{seen_before} seen before", 200)
        return _response(snap, event, duplicate)

    def _record(
        self, request: web.Request, seen: Seen, content_type: str | None, size: int
    ) -> events.Request:
        return events.Request(
            method=request.method,
            headers=_headers(request.headers, seen.secret_header),
            query=seen.custom,
            source_ip=seen.client,
            content_type=content_type,
            size=size,
        )

    def _idempotency_key(self, snap: ConnectorSnapshot, event: events.EventReceived) -> str | None:
        path = snap.config.idempotency_key
        if not path:
            return None
        value = paths.resolve(event.context(), path)
        return None if value is None else str(value)

    def _notice(
        self,
        snap: ConnectorSnapshot,
        kind: str,
        reason: str,
        status: int,
        code: str = "",
        request: web.Request | None = None,
        seen: Seen | None = None,
    ) -> None:
        """Tell the projector about a request that is not a new event (stats; a log entry
        with the request for a rejection or handshake), best effort and at most
        NOTICES_PER_S per connector."""
        if not self.notice_buckets.allow(snap.id, NOTICES_PER_S, time.monotonic()):
            self.metrics.notices_dropped.inc()
            return
        record, raw = None, None
        if request is not None and seen is not None:
            raw = seen.raw
            content_type = request.headers.get(hdrs.CONTENT_TYPE)
            size = len(raw) if raw is not None else request.content_length or 0
            record = self._record(
                request, seen, None if content_type is None else _clean(content_type), size
            )
        notice = events.IngestNotice(
            event_id=events.new_id(),
            connector_id=snap.id,
            connector_version=snap.version,
            occurred_at=events.utcnow(),
            correlation_id="",
            kind=kind,  # type: ignore[arg-type]
            reason=reason,
            status=status,
            code=code,
            request=record,
            raw=None if raw is None else raw[: events.NOTICE_RAW_MAX],
            raw_truncated=raw is not None and len(raw) > events.NOTICE_RAW_MAX,
            retention_days=snap.config.retention_days,
        )
        task = asyncio.create_task(
            self.app[JS].publish(
                subjects.log(self.settings.prefix, snap.id),
                events.encode(notice),
                headers=natsio.msg_id_header(notice.event_id),
            )
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    nc = await natsio.connect(settings, "hookline-ingest")
    js = nc.jetstream()
    kv = await natsio.provision(js, settings)
    registry = Registry()
    await registry.start(js, kv, settings.kv_connectors)
    publisher = natsio.AckPublisher(nc)
    await publisher.start()
    app[NATS], app[JS], app[REGISTRY], app[PUBLISHER] = nc, js, registry, publisher
    app[PEERS] = await Peers.start(js, settings)
    yield
    await app[PEERS].stop()
    await publisher.stop()
    await registry.stop()
    await natsio.shutdown(nc)


def create_app(settings: Settings, metrics: IngestMetrics | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes + 65536)
    app[SETTINGS] = settings
    app[METRICS] = metrics or IngestMetrics(max_connectors=settings.metrics_max_connectors)
    app.cleanup_ctx.append(_resources)
    ingest = Ingest(app)
    for method in ("GET", "POST", "PUT", "PATCH"):
        app.router.add_route(method, "/c/{token}", ingest.handle)

    async def ready() -> bool:
        return NATS in app and app[NATS].is_connected and app[REGISTRY].loaded.is_set()

    own_port = settings.ingest_metrics_port
    add_ops_routes(app, app[METRICS], ready, with_metrics=own_port is None)
    if own_port is not None:
        app.cleanup_ctx.append(metrics_listener(app[METRICS], settings.host, own_port))
    return app


__all__ = ["create_app"]
