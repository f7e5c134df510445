"""The executor's metrics container."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.infra.metrics import BaseMetrics


class ExecutorMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.messages = Counter(
            "hookline_executor_messages_total",
            "Mapped events handled by the executor, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.events = Counter(
            "hookline_executor_events_total",
            "Events finished, by connector and final status.",
            ["connector", "status"],
            registry=r,
        )
        self.step_seconds = Histogram(
            "hookline_executor_step_seconds",
            "Duration of steps, by step type.",
            ["step_type"],
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0),
            registry=r,
        )
        self.redeliveries = Counter(
            "hookline_executor_redeliveries_total",
            "Messages delivered more than once.",
            registry=r,
        )
        self.dead_lettered = Counter(
            "hookline_executor_dead_lettered_total",
            "Events sent to the dead-letter subject after the last attempt.",
            ["connector"],
            registry=r,
        )
        self.connector.on_admit.append(self._zero)
        self.pending = Gauge(
            "hookline_executor_consumer_pending_messages",
            "Messages waiting for the executor's durable consumer (lag).",
            ["consumer"],
            registry=r,
        )

    def _zero(self, connector: str) -> None:
        for status in ("succeeded", "failed"):
            self.events.labels(connector, status)
        self.dead_lettered.labels(connector)
