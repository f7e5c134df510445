"""Channels (F8) for the services that send: an in-memory view fed by a KV bucket.

The config service owns channels (MongoDB is the source of truth) and mirrors each
one, secrets included, into the ``<prefix>_channels`` KV bucket; the KV bucket is
internal to the deployment, only the config API redacts secrets.  The executor
keeps a :class:`ChannelRegistry` watching that bucket, so an action resolves its
channel id without a Mongo round trip and sees an edit within milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, KeysView

import msgspec
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from libs.domain import jsonvalue
from libs.domain.channels import Channel
from libs.infra.nats.kvkeys import live_keys
from libs.infra.nats.kvmirror import KvMirror
from libs.infra.settings import Settings

_encode = msgspec.json.Encoder().encode
_decode: Callable[[bytes], Channel] = jsonvalue.Decoder(Channel).decode  # type: ignore[arg-type]


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


async def republish_all_channels(
    js: JetStreamContext, settings: Settings, channels: Iterable[Channel]
) -> None:
    """Make the bucket equal to ``channels`` (from Mongo): put each one, drop strays."""
    kv = await ensure_channels_bucket(js, settings)
    wanted: set[str] = set()
    for channel in channels:
        await publish_channel(kv, channel)
        wanted.add(channel.id)
    for key in await live_keys(js, bucket_name(settings), skip=wanted):
        await delete_channel(kv, key)


class ChannelRegistry(KvMirror[Channel]):
    """Every channel by id, kept current by a watch on the channels bucket."""

    name = "channels"

    def __init__(self) -> None:
        super().__init__(_decode)

    def get(self, channel_id: str) -> Channel | None:
        return self._by_id.get(channel_id)

    def ids(self) -> KeysView[str]:
        """Every known channel id (a live view: no copy per call)."""
        return self._by_id.keys()
