"""The mapper's metrics container."""

from __future__ import annotations

from libs.domain.events import MAPPING_STATUSES
from libs.infra.metrics import Registry, WorkerMetrics

# A connector without a field mapping is not counted (its result is ``disabled``).
_COUNTED = tuple(status for status in MAPPING_STATUSES if status != "disabled")


class MapperMetrics(WorkerMetrics):
    def __init__(self, registry: Registry = None, *, max_connectors: int | None = None) -> None:
        super().__init__("mapper", "Received events", registry, max_connectors=max_connectors)
        results = ", ".join(_COUNTED)
        self.mappings = self.counter("mappings", f"Field mapping results ({results}).", ["result"])
        self.structures_learned = self.counter(
            "structures_learned", "Structures inferred from a connector's first event."
        )
        self.drift = self.counter(
            "drift", "Events whose shape drifted from the connector's structure.", ["connector"]
        )
