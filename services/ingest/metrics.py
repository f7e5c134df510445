"""Ingest's metrics container."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from libs.infra.metrics import BaseMetrics


class IngestMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self._children: dict[tuple[str, int], Any] = {}
        self.requests = Counter(
            "hookline_ingest_requests_total",
            "Webhook requests answered, by connector and HTTP status.",
            ["connector", "status"],
            registry=r,
        )
        self.duplicates = Counter(
            "hookline_ingest_duplicates_total",
            "Requests answered 2xx but not stored: the idempotency key was seen before.",
            ["connector"],
            registry=r,
        )
        self.connector.on_admit.append(self._zero)
        self.body_bytes = Histogram(
            "hookline_ingest_body_bytes",
            "Size of accepted request bodies.",
            buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304),
            registry=r,
        )
        self.store_seconds = Histogram(
            "hookline_ingest_store_seconds",
            "Time from publish to JetStream's ack (the durable store).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=r,
        )
        self.store_failures = Counter(
            "hookline_ingest_store_failures_total",
            "Publishes that got no ack (answered 503).",
            registry=r,
        )
        self.notices_dropped = Counter(
            "hookline_ingest_notices_dropped_total",
            "Rejected/duplicate notices not sent to the log stream (over the notice rate).",
            registry=r,
        )

    def count(self, connector: str, status: int) -> None:
        """Count one answered request; labelled children are cached (hot path)."""
        key = (connector, status)
        child = self._children.get(key)
        if child is None:
            child = self.requests.labels(self.connector(connector), str(status))
            self._children[key] = child
        child.inc()

    def _zero(self, connector: str) -> None:
        self.duplicates.labels(connector)
