"""How many ingest instances are alive: each one's heartbeat in a KV bucket with a TTL.

A connector's ``rate_limit_per_s`` holds across instances by splitting it: each of N
live instances admits rate / N (``TokenBuckets`` in ``ratelimit``). N is learned off
the hot path: every ``HEARTBEAT_S`` an instance puts its own key (refreshing its TTL)
and counts the keys; a request only reads the last count. A stopped instance deletes
its key (the others see it at their next count); a crashed one's key expires after
``TTL_S``. Until then the survivors admit a little less than the limit, never more;
an instance that joins counts itself at once, the others within ``HEARTBEAT_S``, so
for that long the total may reach (1 + 1/N) x the limit. With NATS unreachable the
last count stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from libs.infra import logging as hlog
from libs.infra.nats.kvkeys import live_keys
from libs.infra.settings import Settings

HEARTBEAT_S = 2.0
TTL_S = 3 * HEARTBEAT_S  # a missed heartbeat or two is not a departure


def bucket_name(settings: Settings) -> str:
    return f"{settings.prefix}_ingest_peers"


async def _bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The heartbeats bucket, created by the first instance that finds none. Instances
    starting together on a NATS cluster may race to create it, and the loser's request
    can go unanswered: then it looks again."""
    name = bucket_name(settings)
    config = KeyValueConfig(
        bucket=name,
        history=1,
        ttl=TTL_S,
        storage=StorageType.MEMORY,  # heartbeats: nothing to keep over a restart
        replicas=settings.stream_replicas,
    )
    for attempt in range(3):
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            pass
        try:
            return await js.create_key_value(config)
        except Exception:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class Peers:
    """This instance's heartbeat, and the number of live instances (itself included)."""

    def __init__(
        self, js: JetStreamContext, kv: KeyValue, bucket: str, instance_id: str | None = None
    ) -> None:
        self.js, self.kv, self.bucket = js, kv, bucket
        self.instance_id = instance_id or uuid.uuid4().hex
        self.count = 1
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, js: JetStreamContext, settings: Settings) -> Peers:
        peers = cls(js, await _bucket(js, settings), bucket_name(settings))
        peers._task = asyncio.create_task(peers._run())
        return peers

    async def beat(self) -> None:
        """Refresh this instance's key, then count the live ones."""
        await self.kv.put(self.instance_id, b"1")
        self.count = max(1, len(await live_keys(self.js, self.bucket)))

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # NATS away (or a new bucket without its leader yet):
                # keep the last count, try again
                hlog.get().warning("ingest.peers_heartbeat_failed", error=repr(exc))
            await asyncio.sleep(HEARTBEAT_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.kv.delete(self.instance_id)  # the others need not wait for the TTL
