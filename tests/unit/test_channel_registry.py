"""ChannelRegistry against a scripted KV watch: loading, updates, deletes, bad entries,
and a re-watch that forgets channels deleted while it was not watching."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import msgspec

from libs.domain.channels import HttpChannel, SmtpChannel, WhatsAppChannel
from libs.infra.nats.channel_registry import ChannelRegistry
from tests.support.fixtures import wait_for


@dataclass
class Entry:
    key: str
    value: bytes | None
    operation: str | None = None
    delta: int = 0  # messages pending after this one (0: the last initial value, or live)


def put(channel: Any, delta: int = 0) -> Entry:
    return Entry(channel.id, msgspec.json.encode(channel), delta=delta)


class Boom(Exception):
    pass


class ScriptedWatcher:
    """Yields its script (Entry, None = end of initial values, Boom = connection lost),
    then whatever is fed to ``live``."""

    def __init__(self, script: list[Entry | type[Boom] | None]) -> None:
        self.script = list(script)
        self.live: asyncio.Queue[Entry] = asyncio.Queue()
        self.stopped = False

    def __aiter__(self) -> AsyncIterator[Entry | None]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Entry | None]:
        for item in self.script:
            if item is Boom:
                raise Boom("connection lost")
            assert not isinstance(item, type)
            yield item
        while True:
            yield await self.live.get()

    async def stop(self) -> None:
        self.stopped = True


class ScriptedKV:
    """The bucket (its watches) and, for ``stream_info``, its JetStream context."""

    def __init__(self, *watchers: ScriptedWatcher, messages: int = 0) -> None:
        self.watchers = list(watchers)
        self.opened: list[ScriptedWatcher] = []
        self.messages = messages  # what the bucket's stream holds
        self.infos: list[str] = []

    async def watchall(self) -> ScriptedWatcher:
        watcher = self.watchers.pop(0)
        self.opened.append(watcher)
        return watcher

    async def stream_info(self, stream: str) -> Any:
        self.infos.append(stream)
        return SimpleNamespace(state=SimpleNamespace(messages=self.messages))


async def start(registry: ChannelRegistry, kv: ScriptedKV) -> None:
    await registry.start(kv, kv, "channels")  # type: ignore[arg-type]


WA = WhatsAppChannel(id="wa", phone_number_id="1", access_token="tok")
MAIL = SmtpChannel(id="mail", host="smtp.example.com", from_address="a@example.com")
HOOK = HttpChannel(id="hook", base_url="https://example.com")


async def test_loads_then_follows_updates_and_deletes() -> None:
    watcher = ScriptedWatcher([put(WA, 1), put(MAIL), None])
    kv = ScriptedKV(watcher, messages=2)
    registry = ChannelRegistry()
    await start(registry, kv)
    try:
        assert registry.loaded.is_set()
        assert registry.get("wa") == WA
        assert registry.get("mail") == MAIL
        assert len(registry) == 2
        assert set(registry.ids()) == {"wa", "mail"}

        renamed = msgspec.structs.replace(MAIL, name="Support")
        watcher.live.put_nowait(put(renamed))
        await wait_for(lambda: registry.get("mail") == renamed, what="the update")

        watcher.live.put_nowait(Entry("wa", b"", "DEL"))
        await wait_for(lambda: registry.get("wa") is None, what="the delete")
        watcher.live.put_nowait(Entry("mail", None, "PURGE"))
        await wait_for(lambda: len(registry) == 0, what="the purge")
        assert "mail" not in registry.ids()
    finally:
        await registry.stop()
    assert watcher.stopped


async def test_empty_bucket_is_loaded() -> None:
    registry = ChannelRegistry()
    await start(registry, ScriptedKV(ScriptedWatcher([None])))
    try:
        assert registry.loaded.is_set()
        assert len(registry) == 0
        assert registry.get("anything") is None
    finally:
        await registry.stop()


async def test_unreadable_entry_is_dropped_not_kept_stale() -> None:
    watcher = ScriptedWatcher([put(WA), None])
    registry = ChannelRegistry()
    await start(registry, ScriptedKV(watcher, messages=1))
    try:
        watcher.live.put_nowait(Entry("wa", b'{"type": "fax", "id": "wa"}'))
        await wait_for(lambda: registry.get("wa") is None, what="the bad entry to drop wa")
        watcher.live.put_nowait(put(HOOK))  # the watch goes on
        await wait_for(lambda: registry.get("hook") == HOOK, what="a later entry")
    finally:
        await registry.stop()


async def test_rewatch_forgets_channels_deleted_meanwhile() -> None:
    first = ScriptedWatcher([put(WA, 1), put(MAIL), None, Boom])
    # While nobody watched, "mail" was deleted (history=1: no marker to see) and
    # "hook" was created.
    second = ScriptedWatcher([put(WA, 1), put(HOOK), None])
    kv = ScriptedKV(first, second, messages=2)
    registry = ChannelRegistry()
    await start(registry, kv)
    try:
        await wait_for(lambda: registry.get("hook") is not None, what="the re-watch")
        assert registry.get("mail") is None
        assert registry.get("wa") == WA
        assert kv.opened == [first, second]
        assert first.stopped
    finally:
        await registry.stop()


async def test_an_early_end_marker_does_not_end_the_initial_values() -> None:
    """nats-py can queue its "initial values done" marker before the values (the
    server pushed them all before the client read the consumer's pending count): the
    registry is not loaded until the last value (nothing pending after it) arrives."""
    watcher = ScriptedWatcher([None])
    kv = ScriptedKV(watcher, messages=2)
    registry = ChannelRegistry()
    starting = asyncio.create_task(start(registry, kv))
    try:
        await wait_for(lambda: kv.infos == ["KV_channels"], what="the marker to be weighed")
        assert not registry.loaded.is_set()
        watcher.live.put_nowait(put(WA, 1))
        await wait_for(lambda: registry.get("wa") == WA, what="the first value")
        assert not registry.loaded.is_set()
        watcher.live.put_nowait(put(MAIL))
        await asyncio.wait_for(starting, timeout=5)
        assert registry.loaded.is_set() and registry.get("mail") == MAIL
    finally:
        await registry.stop()
