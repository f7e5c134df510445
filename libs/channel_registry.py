"""Channels (F8) for the services that send: an in-memory view fed by a KV bucket.

The config service owns channels (MongoDB is the source of truth) and mirrors each
one, secrets included, into the ``<prefix>_channels`` KV bucket; the KV bucket is
internal to the deployment, only the config API redacts secrets.  The executor
keeps a :class:`ChannelRegistry` watching that bucket, so an action resolves its
channel id without a Mongo round trip and sees an edit within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, KeysView

import msgspec
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from libs import logging as hlog
from libs.channels import Channel
from libs.settings import Settings

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Channel).decode


def bucket_name(settings: Settings) -> str:
    return f"{settings.prefix}_channels"


async def ensure_channels_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The channels bucket, created if missing; safe to run from every instance."""
    name = bucket_name(settings)
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        # Two instances racing here both succeed: the server accepts an identical
        # stream config twice.
        return await js.create_key_value(
            KeyValueConfig(
                bucket=name, history=1, storage=StorageType.FILE, replicas=settings.stream_replicas
            )
        )


async def publish_channel(kv: KeyValue, channel: Channel) -> None:
    await kv.put(channel.id, _encode(channel))


async def delete_channel(kv: KeyValue, channel_id: str) -> None:
    await kv.delete(channel_id)


async def republish_all_channels(kv: KeyValue, channels: Iterable[Channel]) -> None:
    """Make the bucket equal to ``channels`` (from Mongo): put each one, drop strays."""
    wanted: set[str] = set()
    for channel in channels:
        await publish_channel(kv, channel)
        wanted.add(channel.id)
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:  # an empty bucket
        keys = []
    for key in keys:
        if key not in wanted:
            await delete_channel(kv, key)


class ChannelRegistry:
    """Every channel by id, kept current by a watch on the channels bucket."""

    def __init__(self) -> None:
        self._by_id: dict[str, Channel] = {}
        self.loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def get(self, channel_id: str) -> Channel | None:
        return self._by_id.get(channel_id)

    def ids(self) -> KeysView[str]:
        """Every known channel id (a live view: no copy per call)."""
        return self._by_id.keys()

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, channel_id: str, channel: Channel | None) -> None:
        if channel is None:
            self._by_id.pop(channel_id, None)
        else:
            self._by_id[channel_id] = channel

    async def start(self, kv: KeyValue, timeout_s: float = 30.0) -> None:
        """Start watching; returns once the bucket's current values are loaded."""
        self._task = asyncio.create_task(self._watch(kv), name="channel-registry-watch")
        await asyncio.wait_for(self.loaded.wait(), timeout=timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self, kv: KeyValue) -> None:
        log = hlog.get()
        while True:
            try:
                watcher = await kv.watchall()
                try:
                    # Keys seen in the initial values of this watch: after a re-watch,
                    # channels deleted in between are dropped at the end of that phase.
                    seen: set[str] | None = set()
                    async for entry in watcher:
                        if entry is None:  # end of the initial values
                            if seen is not None:
                                for stale in set(self._by_id) - seen:
                                    self.apply(stale, None)
                                seen = None
                            self.loaded.set()
                            continue
                        if seen is not None:
                            seen.add(entry.key)
                        if entry.operation in ("DEL", "PURGE") or not entry.value:
                            self.apply(entry.key, None)
                            continue
                        try:
                            self.apply(entry.key, _decode(entry.value))
                        except msgspec.DecodeError as exc:
                            # Keep no stale copy of a channel we cannot read.
                            self.apply(entry.key, None)
                            log.error("channels.bad_entry", key=entry.key, error=str(exc))
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
                self.loaded.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("channels.watch_failed", error=repr(exc))
                await asyncio.sleep(0.5)  # back off before re-watching
