"""The executor's metrics container."""

from __future__ import annotations

from libs.domain.events import VERDICTS
from libs.infra.metrics import Registry, WorkerMetrics


class ExecutorMetrics(WorkerMetrics):
    def __init__(self, registry: Registry = None, *, max_connectors: int | None = None) -> None:
        super().__init__("executor", "Mapped events", registry, max_connectors=max_connectors)
        self.events = self.counter(
            "events", "Events finished, by connector and final status.", ["connector", "status"]
        )
        self.step_seconds = self.histogram(
            "step_seconds",
            "Duration of steps, by step type.",
            ["step_type"],
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0),
        )
        self.dead_lettered = self.counter(
            "dead_lettered",
            "Events sent to the dead-letter subject after the last attempt.",
            ["connector"],
        )
        self.alerts = self.counter(
            "alerts",
            "Notifications to the operator (F14), by reason and outcome (sent, failed).",
            ["reason", "outcome"],
        )
        self.connector.on_admit.append(self._zero)

    def _zero(self, connector: str) -> None:
        for status in VERDICTS:
            self.events.labels(connector, status)
        self.dead_lettered.labels(connector)
