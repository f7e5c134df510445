"""The mapper's metrics container."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.infra.metrics import BaseMetrics


class MapperMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.messages = Counter(
            "hookline_mapper_messages_total",
            "Received events handled by the mapper, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.mappings = Counter(
            "hookline_mapper_mappings_total",
            "Field mapping results (created, updated, unchanged, matched_email, skipped, error).",
            ["result"],
            registry=r,
        )
        self.redeliveries = Counter(
            "hookline_mapper_redeliveries_total",
            "Messages delivered more than once.",
            registry=r,
        )
        self.structures_learned = Counter(
            "hookline_mapper_structures_learned_total",
            "Structures inferred from a connector's first event.",
            registry=r,
        )
        self.drift = Counter(
            "hookline_mapper_drift_total",
            "Events whose shape drifted from the connector's structure.",
            ["connector"],
            registry=r,
        )
        self.pending = Gauge(
            "hookline_mapper_consumer_pending_messages",
            "Messages waiting for the mapper's durable consumer (lag).",
            ["consumer"],
            registry=r,
        )
