"""libs.infra.nats.client's publisher against a real nats-server with JetStream."""

from __future__ import annotations

import pytest

from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
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
