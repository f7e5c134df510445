"""An in-memory mirror of a NATS KV bucket, kept current by a watch.

The connector registry and the channel registry are both this: every value by key,
loaded before the service reports ready, updated within milliseconds of a put or a
delete, and rebuilt on a re-watch (keys deleted while the watch was down are dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from libs.infra import logging as hlog
from libs.infra.nats.kvkeys import stream_of

T = TypeVar("T")


class KvMirror(Generic[T]):
    name = "kv"

    def __init__(self, decode: Callable[[bytes], T]) -> None:
        self._by_id: dict[str, T] = {}
        self._decode = decode
        self.loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, key: str, value: T | None) -> None:
        """Store or drop one value; subclasses keep their own indexes in step."""
        if value is None:
            self._by_id.pop(key, None)
        else:
            self._by_id[key] = value

    async def start(
        self, js: JetStreamContext, kv: KeyValue, bucket: str, timeout_s: float = 30.0
    ) -> None:
        """Start watching; returns once the bucket's current values are loaded."""
        self._task = asyncio.create_task(self._watch(js, kv, bucket), name=f"{self.name}-watch")
        await asyncio.wait_for(self.loaded.wait(), timeout=timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _initial_values_done(self, seen: set[str]) -> None:
        """After a re-watch, keys deleted while the watch was down are dropped."""
        for stale in set(self._by_id) - seen:
            self.apply(stale, None)
        self.loaded.set()

    def _apply_encoded(self, key: str, value: bytes) -> None:
        try:
            self.apply(key, self._decode(value))
        except msgspec.DecodeError as exc:
            self.apply(key, None)  # keep no stale copy
            hlog.get().error(f"{self.name}.bad_entry", key=key, error=str(exc))

    async def _watch(self, js: JetStreamContext, kv: KeyValue, bucket: str) -> None:
        log = hlog.get()
        while True:
            try:
                watcher = await kv.watchall()
                try:
                    # Keys seen in this watch's initial values, until the last of them:
                    # the entry with nothing pending after it. nats-py's own marker for
                    # that (None) can come *before* the values (see ``kvkeys``), so it
                    # ends the phase only when the bucket really holds nothing.
                    seen: set[str] | None = set()
                    async for entry in watcher:
                        if entry is None:
                            if seen is not None and not await _holds_messages(js, bucket):
                                self._initial_values_done(seen)
                                seen = None
                            continue
                        if seen is not None:
                            seen.add(entry.key)
                        if entry.operation in ("DEL", "PURGE") or not entry.value:
                            self.apply(entry.key, None)
                        else:
                            self._apply_encoded(entry.key, entry.value)
                        if seen is not None and entry.delta == 0:
                            self._initial_values_done(seen)
                            seen = None
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
                self.loaded.set()  # a bucket with no entries ends its initial phase too
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(f"{self.name}.watch_failed", error=repr(exc))
                await asyncio.sleep(0.5)  # back off before re-watching


async def _holds_messages(js: JetStreamContext, bucket: str) -> bool:
    return (await js.stream_info(stream_of(bucket))).state.messages > 0
