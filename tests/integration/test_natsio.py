"""libs.infra.nats.client's publisher against a real nats-server with JetStream."""

from __future__ import annotations

import pytest

from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.nats.kvkeys import live_keys
from libs.infra.settings import Settings

pytestmark = pytest.mark.integration


async def test_publish_many_reports_each_message(settings: Settings) -> None:
    """Stored, duplicate (stored once) and refused (no stream for the subject) side by
    side in one batch: one outcome per message, in order, and only stored ones count."""
    nc = await natsio.connect(settings, "test-publisher")
    try:
        js = nc.jetstream()
        await natsio.provision(js, settings)
        publisher = natsio.AckPublisher(nc)
        await publisher.start()
        subject = subjects.mapped(settings.prefix, "c1")
        outcomes = await publisher.publish_many(
            [
                (subject, b"1", "m1"),
                (f"{settings.prefix}.nowhere", b"2", "m2"),
                (subject, b"3", "m3"),
                (subject, b"1 again", "m1"),
            ]
        )
        assert [type(o).__name__ if o else None for o in outcomes] == [
            None,
            "PublishError",
            None,
            None,
        ]
        assert "no JetStream stream" in str(outcomes[1])
        info = await js.stream_info(settings.stream_events)
        assert info.state.messages == 2  # m1 once, m3
        assert await publisher.publish_many([]) == []
        await publisher.stop()
    finally:
        await nc.close()


async def test_an_existing_consumer_gets_the_new_limits_and_keeps_its_place(
    settings: Settings,
) -> None:
    """A release that raises a consumer's max_ack_pending or ack wait reaches a running
    deployment: the durable is updated in place, not recreated (nothing is redelivered)."""
    nc = await natsio.connect(settings, "test-consumer-update")
    try:
        js = nc.jetstream()
        await natsio.provision(js, settings)
        subject = subjects.mapped(settings.prefix, "c1")
        for n in range(3):
            await js.publish(subject, str(n).encode())
        kwargs = {"stream": settings.stream_events, "durable": "upgraded", "subject": subject}
        old = await natsio.pull_subscription(js, ack_wait_s=5.0, max_ack_pending=50, **kwargs)
        (first,) = await old.fetch(1, timeout=5)
        await first.ack_sync()
        await old.unsubscribe()
        new = await natsio.pull_subscription(js, ack_wait_s=7.0, max_ack_pending=70, **kwargs)
        info = await js.consumer_info(settings.stream_events, "upgraded")
        assert (info.config.max_ack_pending, info.config.ack_wait) == (70, 7.0)
        (second,) = await new.fetch(1, timeout=5)
        assert (first.data, second.data) == (b"0", b"1")
    finally:
        await nc.close()


async def test_live_keys_lists_values_not_deleted_or_purged_keys(settings: Settings) -> None:
    """What a republish and the ingest peer count rely on: every key holding a value,
    none whose last message is a delete or purge marker, ``skip`` left unread; asked
    right after the writes, round after round (nats-py's ``keys()`` answered "no keys"
    for a full bucket in this position)."""
    nc = await natsio.connect(settings, "test-live-keys")
    try:
        js = nc.jetstream()
        bucket = f"{settings.prefix}_live_keys"
        kv = await js.create_key_value(bucket=bucket, history=1)
        assert await live_keys(js, bucket) == []
        for n in range(20):
            await kv.put(f"kept{n}", b"1")
            await kv.put(f"gone{n}", b"1")
            await kv.delete(f"gone{n}")
            await kv.put(f"purged{n}", b"1")
            await kv.purge(f"purged{n}")
            expected = {f"kept{i}" for i in range(n + 1)}
            assert set(await live_keys(js, bucket)) == expected
            assert set(await live_keys(js, bucket, skip={"kept0"})) == expected - {"kept0"}
    finally:
        await nc.close()
