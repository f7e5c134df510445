"""The config service: the operator's API, the owner of MongoDB, and the projector
that turns received events and execution logs into the event log and stats."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from libs.infra import logging as hlog
from libs.infra.http import ApiError, error
from libs.infra.metrics import add_ops_routes
from libs.infra.mongo import store as hmongo
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.settings import Settings, ensure_admin_token
from services.config import (
    connectors_api,
    contacts_api,
    crm_api,
    events_api,
    openapi,
    snapshots,
    structure_api,
)
from services.config.context import CTX, Context
from services.config.metrics import ConfigMetrics
from services.config.projector import Projector

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", ConfigMetrics)

PUBLIC = ("/healthz", "/readyz", "/metrics", "/openapi.json")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = request.app
    metrics = app[METRICS]
    route = (
        request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
    )
    started = time.perf_counter()
    try:
        if request.path not in PUBLIC:
            _authorize(request, app[SETTINGS].admin_token)
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        response = error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        hlog.get().exception("config.unhandled", path=request.path)
        response = error(500, "internal", "internal error; see the config service's log")
    metrics.requests.labels(request.method, route, str(response.status)).inc()
    metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
    return response


def _authorize(request: web.Request, token: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # Constant-time comparison: response time says nothing about how much matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), token.encode()
    ):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <admin token>")


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    nc = await natsio.connect(settings, "hookline-config")
    js = nc.jetstream()
    kv = await natsio.provision(js, settings)
    mongo = hmongo.client(settings)
    store = hmongo.Store(mongo, settings.mongo_db)
    await store.ensure_indexes()
    # Mongo is the source of truth: rebuild KV from it at every start.
    await snapshots.republish_all(kv, await store.list_connectors())
    app[CTX] = Context(settings=settings, store=store, nc=nc, js=js, kv=kv)
    await crm_api.republish_channels(app[CTX])

    projector = Projector(
        store,
        grace_s=settings.log_grace_s,
        projected=lambda name, count: metrics.projected.labels(name).inc(count),
    )
    stop = asyncio.Event()
    tasks = []
    subs = []
    for durable, stream, subject, handler in (
        (
            "projector-received",
            settings.stream_events,
            subjects.all_received(settings.prefix),
            projector.on_received,
        ),
        (
            "projector-logs",
            settings.stream_logs,
            subjects.all_logs(settings.prefix),
            projector.on_log,
        ),
    ):
        sub = await natsio.pull_subscription(
            js, stream=stream, durable=durable, subject=subject, ack_wait_s=settings.ack_wait_s
        )
        subs.append(sub)
        tasks.append(
            asyncio.create_task(
                natsio.consume(
                    sub,
                    handler,
                    stop,
                    batch=500,
                    keepalive_s=settings.ack_wait_s / 3,
                )
            )
        )
        tasks.append(asyncio.create_task(natsio.watch_lag(sub, metrics.pending, durable, stop)))
    yield
    stop.set()
    await asyncio.gather(*tasks[0::2])
    for task in tasks[1::2]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await natsio.shutdown(nc, subs)
    await mongo.close()


def create_app(settings: Settings, metrics: ConfigMetrics | None = None) -> web.Application:
    app = web.Application(middlewares=[errors_and_auth], client_max_size=4 * 1024 * 1024)
    app[SETTINGS] = ensure_admin_token(settings)
    app[METRICS] = metrics or ConfigMetrics()
    app.cleanup_ctx.append(_resources)
    app.add_routes(connectors_api.routes)
    app.add_routes(events_api.routes)
    app.add_routes(structure_api.routes)
    app.add_routes(crm_api.routes)
    app.add_routes(contacts_api.routes)
    app.add_routes(openapi.routes)

    async def ready() -> bool:
        if CTX not in app:
            return False
        return app[CTX].nc.is_connected and await app[CTX].store.ping()

    add_ops_routes(app, app[METRICS], ready)
    return app
