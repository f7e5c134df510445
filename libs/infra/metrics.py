"""Prometheus plumbing shared by every service: a registry per service, capped labels,
and the ``/metrics``, ``/healthz`` and ``/readyz`` endpoints.

Each service defines its own container class (its ``metrics.py``) on top of this:
``BaseMetrics`` names every metric ``hookline_<service>_<name>`` and builds the kinds
every service has (counters, histograms, the consumer lag gauge) in one line each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from libs.infra import settings as hsettings
from libs.infra.mongo.counting import CommandCounter

OTHER = "other"
Registry = CollectorRegistry | None  # None: a registry of the container's own


class LabelCap:
    """Keeps a label's cardinality bounded: the first ``limit`` values are kept as they are,
    later ones fold into ``other`` (every distinct label value is a time series in
    Prometheus, and an unbounded number of connectors would grow its memory without end).
    """

    def __init__(self, limit: int) -> None:
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
    """A service's registry, its capped ``connector`` label and the builders of its metrics.

    ``max_connectors`` is ``Settings.metrics_max_connectors``, which each service's
    ``create_app`` passes; the default is that setting's default.
    """

    def __init__(
        self,
        service: str,
        registry: Registry = None,
        *,
        max_connectors: int | None = None,
    ) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        if max_connectors is None:
            max_connectors = hsettings.Settings().metrics_max_connectors
        self.connector = LabelCap(max_connectors)
        self._mongo: CommandCounter | None = None

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """``hookline_<service>_<name>_total``."""
        return Counter(
            f"hookline_{self.service}_{name}_total", documentation, labels, registry=self.registry
        )

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return Histogram(
            f"hookline_{self.service}_{name}",
            documentation,
            labels,
            buckets=buckets,
            registry=self.registry,
        )

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """``hookline_<service>_<name>``: a value read now, not a count."""
        return Gauge(
            f"hookline_{self.service}_{name}", documentation, labels, registry=self.registry
        )

    def mongo_listener(self) -> CommandCounter:
        """The command listener that counts this service's database work (one per
        registry: a service with two clients counts both into the same series)."""
        if self._mongo is None:
            self._mongo = CommandCounter(
                self.counter("mongo_commands", "MongoDB commands sent, by command.", ["command"]),
                self.counter(
                    "mongo_documents_written",
                    "Documents the commands inserted, updated or deleted (at most), by collection.",
                    ["collection"],
                ),
            )
        return self._mongo

    def lag_gauge(self, whose: str) -> Gauge:
        """``hookline_<service>_consumer_pending_messages{consumer}``: the lag of ``whose``
        durable consumer(s), read by ``libs.runtime.worker``."""
        return Gauge(
            f"hookline_{self.service}_consumer_pending_messages",
            f"Messages waiting for {whose} (lag).",
            ["consumer"],
            registry=self.registry,
        )


class WorkerMetrics(BaseMetrics):
    """What every service that consumes the event stream counts: ``messages`` by
    outcome, ``redeliveries`` and its consumer's lag (``pending``)."""

    def __init__(
        self,
        service: str,
        handles: str,
        registry: Registry = None,
        *,
        max_connectors: int | None = None,
    ) -> None:
        super().__init__(service, registry, max_connectors=max_connectors)
        self.messages = self.counter(
            "messages", f"{handles} handled by the {service}, by outcome.", ["outcome"]
        )
        self.redeliveries = self.counter("redeliveries", "Messages delivered more than once.")
        self.pending = self.lag_gauge(f"the {service}'s durable consumer")


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
