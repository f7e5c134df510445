"""The config service's metrics container."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.infra.metrics import BaseMetrics


class ConfigMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.requests = Counter(
            "hookline_config_requests_total",
            "Config API requests, by method, route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "hookline_config_request_seconds",
            "Config API latency, by route.",
            ["route"],
            registry=r,
        )
        self.projected = Counter(
            "hookline_config_projected_messages_total",
            "Messages written to the event log and stats, by projection.",
            ["projection"],
            registry=r,
        )
        self.pending = Gauge(
            "hookline_config_consumer_pending_messages",
            "Messages waiting for the projector's durable consumers (lag).",
            ["consumer"],
            registry=r,
        )
