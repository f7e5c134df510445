"""The in-memory view of every connector, fed by watching the connectors KV bucket.

Ingest, mapper and executor read connectors from here: no Mongo round trip per
event, and a rotated token is gone from every instance as soon as the watch
delivers the update (milliseconds).
"""

from __future__ import annotations

import time

from libs.domain import jsonvalue
from libs.domain.connector import ConnectorSnapshot
from libs.infra.nats.kvmirror import KvMirror


class Registry(KvMirror[ConnectorSnapshot]):
    name = "registry"

    def __init__(self) -> None:
        super().__init__(jsonvalue.Decoder(ConnectorSnapshot).decode)
        self._by_token: dict[str, str] = {}

    def by_id(self, connector_id: str) -> ConnectorSnapshot | None:
        return self._by_id.get(connector_id)

    def by_token(self, token: str, now: float | None = None) -> ConnectorSnapshot | None:
        connector_id = self._by_token.get(token)
        if connector_id is None:
            return None
        snap = self._by_id.get(connector_id)
        if snap is None:
            return None
        if token == snap.token:
            return snap
        # A rotated token lives on only inside its grace period.
        until = snap.previous_token_until or 0.0
        return snap if (now if now is not None else time.time()) < until else None

    def apply(self, connector_id: str, snap: ConnectorSnapshot | None) -> None:
        old = self._by_id.pop(connector_id, None)
        if old is not None:
            self._by_token.pop(old.token, None)
            if old.previous_token:
                self._by_token.pop(old.previous_token, None)
        if snap is None or snap.deleted:
            return
        self._by_id[connector_id] = snap
        self._by_token[snap.token] = connector_id
        if snap.previous_token:
            self._by_token[snap.previous_token] = connector_id
