"""Ingest's metrics container."""

from __future__ import annotations

from typing import Any

from libs.infra.metrics import BaseMetrics, Registry


class IngestMetrics(BaseMetrics):
    def __init__(self, registry: Registry = None, *, max_connectors: int | None = None) -> None:
        super().__init__("ingest", registry, max_connectors=max_connectors)
        self._children: dict[tuple[str, int], Any] = {}
        self.requests = self.counter(
            "requests",
            "Webhook requests answered, by connector and HTTP status.",
            ["connector", "status"],
        )
        self.duplicates = self.counter(
            "duplicates",
            "Requests answered 2xx but not stored: the idempotency key was seen before.",
            ["connector"],
        )
        self.rejected = self.counter(
            "rejected",
            "Requests refused before they were stored (4xx), by connector and reason code "
            "(bad_signature, stale_timestamp, address_not_allowed, invalid_json, …).",
            ["connector", "reason"],
        )
        self.handshakes = self.counter(
            "handshakes",
            "Subscription handshakes answered (2xx, not events), by connector; the log "
            "entry names the kind.",
            ["connector"],
        )
        self.connector.on_admit.append(self._zero)
        self.body_bytes = self.histogram(
            "body_bytes",
            "Size of accepted request bodies.",
            buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304),
        )
        self.store_seconds = self.histogram(
            "store_seconds",
            "Time from publish to JetStream's ack (the durable store).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.store_failures = self.counter(
            "store_failures", "Publishes that got no ack (answered 503)."
        )
        self.notices_dropped = self.counter(
            "notices_dropped",
            "Rejected/duplicate notices not sent to the log stream (over the notice rate).",
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
        self.handshakes.labels(connector)
