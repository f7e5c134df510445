"""A message a consumer cannot decode is counted, logged and terminated by the shared
worker runtime (``worker.decode_batch``): never redelivered, never holding its batch."""

from __future__ import annotations

import re
from collections.abc import Callable

import aiohttp
import pytest

from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.settings import Settings
from tests.support.fixtures import wait_for
from tests.support.system import InProcessSystem

pytestmark = pytest.mark.integration


def _count(text: str, service: str, outcome: str) -> float:
    pattern = rf'^hookline_{service}_messages_total{{outcome="{outcome}"}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize(
    ("service", "subject"), [("mapper", subjects.received), ("executor", subjects.mapped)]
)
async def test_an_undecodable_message_is_terminated_once_and_counted(
    settings: Settings,
    session: aiohttp.ClientSession,
    service: str,
    subject: Callable[[str, str], str],
) -> None:
    system = await InProcessSystem(settings).start(only=("config", service))
    nc = await natsio.connect(settings, "undecodable-test")
    try:
        js = nc.jetstream()
        # Not JSON, an unknown tag, bytes that are no text, and the realistic one: a known
        # tag whose fields are missing or of the wrong type.
        payloads = (
            b"not json",
            b'{"type": "no.such.event"}',
            b"\xff\xfe",
            b'{"type": "event.received.v1"}',
            b'{"type": "event.mapped.v1", "event_id": 7, "connector_id": null}',
        )
        for payload in payloads:
            last = await js.publish(subject(settings.prefix, "c1"), payload)
        url = system.apps[service].url + "/metrics"

        async def counted() -> float | None:
            async with session.get(url) as response:
                seen = _count(await response.text(), service, "undecodable")
            return seen if seen >= len(payloads) else None

        seen = await wait_for(counted, what=f"the {service} to count the undecodable")
        assert seen == len(payloads)

        async def settled() -> bool:
            info = await js.consumer_info(settings.stream_events, service)  # durable = service
            # Settled, not put back: the ack floor passed the last one published.
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            return info.num_ack_pending == 0 and (floor or 0) >= last.seq

        await wait_for(settled, what="the messages terminated, none waiting")
        info = await js.consumer_info(settings.stream_events, service)  # durable = service
        assert info.num_redelivered == 0
    finally:
        await nc.close()
        await system.stop()
