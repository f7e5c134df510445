"""The in-memory view of every connector, fed by watching the connectors KV bucket.

Ingest, mapper and executor read connectors from here: no Mongo round trip per
event, and a rotated token is gone from every instance as soon as the watch
delivers the update (milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
from nats.js.kv import KeyValue

from libs import logging as hlog
from libs.connector import ConnectorSnapshot

_decode = msgspec.json.Decoder(ConnectorSnapshot).decode


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, ConnectorSnapshot] = {}
        self._by_token: dict[str, str] = {}
        self.loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -------------------------------------------------------------- queries

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

    def __len__(self) -> int:
        return len(self._by_id)

    # -------------------------------------------------------------- updates

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

    async def start(self, kv: KeyValue) -> None:
        self._task = asyncio.create_task(self._watch(kv), name="registry-watch")
        await asyncio.wait_for(self.loaded.wait(), timeout=30)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self, kv: KeyValue) -> None:
        log = hlog.get()
        while True:
            try:
                watcher = await kv.watchall()
                async for entry in watcher:
                    if entry is None:  # end of the initial values
                        self.loaded.set()
                        continue
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        self.apply(entry.key, None)
                        continue
                    try:
                        self.apply(entry.key, _decode(entry.value))
                    except msgspec.DecodeError as exc:
                        log.error("registry.bad_snapshot", key=entry.key, error=str(exc))
                # A watcher with no entries at all still ends its initial phase.
                self.loaded.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("registry.watch_failed", error=repr(exc))
                await asyncio.sleep(0.5)  # back off before re-watching
