"""The config service's metrics container."""

from __future__ import annotations

from libs.infra.metrics import BaseMetrics, Registry


class ConfigMetrics(BaseMetrics):
    def __init__(self, registry: Registry = None, *, max_connectors: int | None = None) -> None:
        super().__init__("config", registry, max_connectors=max_connectors)
        self.requests = self.counter(
            "requests",
            "Config API requests, by method, route and status.",
            ["method", "route", "status"],
        )
        self.request_seconds = self.histogram(
            "request_seconds", "Config API latency, by route.", ["route"]
        )
        self.projected = self.counter(
            "projected_messages",
            "Messages written to the event log and stats, by projection.",
            ["projection"],
        )
        self.pending = self.lag_gauge("the projector's durable consumers")
        self.paused = self.gauge("connectors_paused", "Connectors paused now.")
        self.held = self.gauge(
            "held_events", "Events held for a paused connector, by connector.", ["connector"]
        )
        self.released = self.counter(
            "released_events", "Held events put back on resume, by connector.", ["connector"]
        )
        self.bulk_replayed = self.counter(
            "bulk_replayed_events", "Events published by bulk replays, by connector.", ["connector"]
        )
