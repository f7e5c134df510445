"""A KV bucket's live keys, listed by asking the stream, not by nats-py's ``keys()``.

``KeyValue.keys()`` (nats-py 2.16) watches the bucket and stops at the watcher's
"initial values done" marker, which it can queue *before* the values: when the
server has pushed every message by the time the client asks the new consumer for
its pending count, the count reads 0 while the client has processed none of them,
and the marker goes first. ``keys()`` then answers "no keys" for a full bucket
(seen in CI: a stray channel survived a republish). The stream's own subject list
is one request with no such race; a key whose last message is a delete or purge
marker is dead, which costs one read per listed key, so this is for small buckets
(channels, connectors' snapshots, ingest heartbeats), never for a hot path.
"""

from __future__ import annotations

from collections.abc import Container

import nats.js.errors
from nats.js import JetStreamContext

_DEAD_OPS = ("DEL", "PURGE")  # KV-Operation header of a delete / purge marker
_DEAD_REASONS = ("MaxAge", "Purge", "Remove")  # Nats-Marker-Reason (nats-server 2.11+)


def stream_of(bucket: str) -> str:
    """The JetStream stream behind a KV bucket (the KV protocol's naming)."""
    return f"KV_{bucket}"


async def live_keys(
    js: JetStreamContext, bucket: str, *, skip: Container[str] = frozenset()
) -> list[str]:
    """Every key of ``bucket`` holding a value now, except those in ``skip`` (which
    are not read: a caller looking for strays skips the keys it wants)."""
    stream, prefix = stream_of(bucket), f"$KV.{bucket}."
    info = await js.stream_info(stream, subjects_filter=f"{prefix}>")
    keys: list[str] = []
    for subject in info.state.subjects or {}:
        key = subject[len(prefix) :]
        if key in skip:
            continue
        try:
            last = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:  # removed since the listing
            continue
        headers = last.headers or {}
        if headers.get("KV-Operation") in _DEAD_OPS:
            continue
        if headers.get("Nats-Marker-Reason") in _DEAD_REASONS:
            continue
        keys.append(key)
    return keys
