"""Prometheus plumbing shared by every service: a registry per service, capped labels,
and the ``/metrics``, ``/healthz`` and ``/readyz`` endpoints.

Each service defines its own container class (its ``metrics.py``) on top of this.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

OTHER = "other"


class LabelCap:
    """Keeps a label's cardinality bounded: the first ``limit`` values are kept as they are,
    later ones fold into ``other`` (every distinct label value is a time series in
    Prometheus, and an unbounded number of connectors would grow its memory without end).
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            limit = int(os.environ.get("HOOKLINE_METRICS_MAX_CONNECTORS", "200"))
        self._limit = limit
        self._seen: set[str] = set()
        # Called once per admitted value: services create that value's series at 0,
        # because Prometheus' rate()/increase() cannot see a counter's first increment.
        self.on_admit: list[Callable[[str], None]] = []

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            for init in self.on_admit:
                init(value)
            return value
        return OTHER


class BaseMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.connector = LabelCap()


ReadyCheck = Callable[[], Awaitable[bool]]


def _metrics_handler(metrics: BaseMetrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


def add_ops_routes(
    app: web.Application, metrics: BaseMetrics, ready: ReadyCheck, *, with_metrics: bool = True
) -> None:
    """``/metrics`` (Prometheus text, unless served on a port of its own),
    ``/healthz`` (alive), ``/readyz`` (dependencies up)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok = await ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    if with_metrics:
        app.router.add_get("/metrics", _metrics_handler(metrics))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def metrics_listener(
    metrics: BaseMetrics, host: str, port: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context serving ``/metrics`` alone on ``host:port`` while the app runs."""

    async def listen(_: web.Application) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_get("/metrics", _metrics_handler(metrics))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        yield
        await runner.cleanup()

    return listen
