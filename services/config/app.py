"""The config service: the operator's API, the owner of MongoDB, and the projector
that turns received events and execution logs into the event log and stats."""

from __future__ import annotations

import asyncio
import contextlib
import functools
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
from libs.runtime import background, worker
from services.config import (
    bulk_replay,
    connectors_api,
    console,
    contacts_api,
    crm_api,
    events_api,
    openapi,
    pausing,
    snapshots,
    structure_api,
)
from services.config.context import CTX, Context
from services.config.metrics import ConfigMetrics
from services.config.projector import Projector

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", ConfigMetrics)

PUBLIC = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/console")
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
        if request.path not in PUBLIC and not request.path.startswith(console.PUBLIC_PREFIXES):
            token = app[SETTINGS].admin_token
            # The bearer token (curl, the CLI) or the console's session cookie + CSRF.
            if "Authorization" in request.headers or not console.authorize_session(request, token):
                _authorize(request, token)
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


ROLES = frozenset({"api", "projector"})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """The composition root of a config process: every resource built once from settings,
    then the roles the settings switch on. The API owns Mongo -> KV (it republishes the
    snapshots at start); the projector turns the streams into the event log and stats."""
    settings = app[SETTINGS]
    roles = settings.roles
    nc = await natsio.connect(settings, f"hookline-config-{'-'.join(sorted(roles))}")
    js = nc.jetstream()
    kv = await natsio.provision(js, settings)
    mongo = hmongo.client(settings, [app[METRICS].mongo_listener()])
    store = hmongo.Store(mongo, settings.mongo_db)
    ctx = Context(settings=settings, store=store, nc=nc, js=js, kv=kv)
    try:
        await store.ensure_indexes()
        if "api" in roles:
            # Mongo is the source of truth: rebuild KV from it at every start.
            await snapshots.republish_all(
                js, kv, settings.kv_connectors, await store.list_connectors()
            )
            await crm_api.republish_channels(ctx)
        app[CTX] = ctx
        async with contextlib.AsyncExitStack() as running:
            if "api" in roles:
                await running.enter_async_context(pausing.releasing(app, ctx, app[METRICS]))
                await running.enter_async_context(bulk_replay.replaying(app, ctx, app[METRICS]))
            if "projector" in roles:
                await running.enter_async_context(_projecting(ctx, app[METRICS]))
            yield
    finally:
        await natsio.shutdown(nc, ctx.subs)
        await mongo.close()


@contextlib.asynccontextmanager
async def _projecting(ctx: Context, metrics: ConfigMetrics) -> AsyncIterator[None]:
    """The projector role: one durable consumer per stream; closing finishes and settles
    the batches in flight."""
    settings = ctx.settings
    projector = Projector(
        ctx.store,
        grace_s=settings.log_grace_s,
        max_wait_s=settings.ack_wait_s / 2,
        retention_days=settings.log_retention_days,
        projected=lambda name, count: metrics.projected.labels(name).inc(count),
    )
    consume = functools.partial(
        worker.consuming, ctx, lag=metrics.pending, parallel=1, batch=500, stop=asyncio.Event()
    )
    async with (
        background.loop_running(functools.partial(_flush, projector), "projector-flush"),
        consume(
            stream=settings.stream_events,
            durable="projector-received",
            subject=subjects.all_received(settings.prefix),
            handler=projector.on_received,
            # Messages wait unacknowledged for their verdict (each held in memory): this
            # bounds the projector's memory; the rest wait in the stream.
            max_ack_pending=PROJECTOR_MAX_WAITING,
        ),
        consume(
            stream=settings.stream_logs,
            durable="projector-logs",
            subject=subjects.all_logs(settings.prefix),
            handler=projector.on_log,
        ),
    ):
        yield
    # The consumers have finished their batches: write what still waits (or leave it
    # unacked for redelivery, when the database is away).
    with contextlib.suppress(Exception):
        await projector.flush(everything=True)


# About 2.5 KB each (the message and its headers): ~25 MiB at most. Waiting ends at the
# verdict, so this limits the received projection only while no verdict comes (executor
# down or the connector paused): to 10,000 per grace, 2,000 events/s at the default 5 s.
PROJECTOR_MAX_WAITING = 10_000
FLUSH_EVERY_S = 0.2


async def _flush(projector: Projector, stop: asyncio.Event) -> None:
    """Settle the projector's waiting messages as their grace ends."""
    while not stop.is_set():
        try:
            await projector.flush()
        except Exception as exc:  # the next round tries again
            hlog.get().warning("projector.flush_failed", error=repr(exc)[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=FLUSH_EVERY_S)


def create_app(settings: Settings, metrics: ConfigMetrics | None = None) -> web.Application:
    unknown = settings.roles - ROLES
    if unknown or not settings.roles:
        raise ValueError(
            f"HOOKLINE_CONFIG_ROLES={settings.config_roles!r}: name one or both of "
            + ", ".join(sorted(ROLES))
        )
    app = web.Application(middlewares=[errors_and_auth], client_max_size=4 * 1024 * 1024)
    # Only the API checks the admin token; a projector needs none (nor a writable data dir).
    app[SETTINGS] = ensure_admin_token(settings) if "api" in settings.roles else settings
    app[METRICS] = metrics or ConfigMetrics(max_connectors=settings.metrics_max_connectors)
    app.cleanup_ctx.append(_resources)
    if "api" in settings.roles:
        modules = (
            connectors_api,
            pausing,
            events_api,
            bulk_replay,
            structure_api,
            crm_api,
            contacts_api,
            console,
        )
        for module in (*modules, openapi):
            app.add_routes(module.routes)
        app.on_startup.append(openapi.build_spec)

    async def ready() -> bool:
        if CTX not in app:
            return False
        return app[CTX].nc.is_connected and await app[CTX].store.ping()

    add_ops_routes(app, app[METRICS], ready)
    return app
