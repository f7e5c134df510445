"""The seed's drip campaign end to end on real processes: one URL, ``?value=day1|2|3``,
each value sends its own email (real SMTP server) and its own WhatsApp message (a local
server speaking the Cloud API), personalised with event, subscriber and formatter
attributes.  And: a crash between an action's success and the ack sends nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.infra.settings import Settings
from tests.support import crashing_executor
from tests.support.fixtures import wait_for
from tests.support.graph_api import WA_TOKEN, GraphApiServer
from tests.support.processes import ProcessSystem
from tests.support.smtp import SmtpRecorder
from tests.support.steps import day_branch
from tests.support.system import Api

pytestmark = pytest.mark.e2e


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[ProcessSystem]:
    system = ProcessSystem(settings, tmp_path / "logs")
    yield system
    system.stop()


async def _channels(api: Api, smtp: SmtpRecorder, graph: GraphApiServer) -> None:
    await api.call(
        "POST",
        "/api/v1/channels",
        {
            "type": "email",
            "id": "mail-main",
            "host": smtp.host,
            "port": smtp.port,
            "from_address": "drip@hookline.test",
            "starttls": False,
            "allow_private": True,  # the test's mail server is on loopback
        },
        expect=201,
    )
    await api.call(
        "POST",
        "/api/v1/channels",
        {
            "type": "whatsapp",
            "id": "wa-main",
            "phone_number_id": "1055500001",
            "access_token": WA_TOKEN,
            "api_base": graph.base_url,
            "allow_private": True,
        },
        expect=201,
    )


def drip_config() -> dict[str, Any]:
    def day(n: int) -> dict[str, Any]:
        return day_branch(
            f"day{n}",
            f"day{n}",
            f"day{n}-only",
            {
                "type": "email",
                "id": f"day{n}-mail",
                "channel": "mail-main",
                "to": "{{ system.email }}",
                "subject": f"Day {n}: hello {{{{ system.name }}}}",
                "text": f"Message {n} for {{{{ system.name }}}} in {{{{ subscriber.city }}}}, "
                "member since {{ formatter.joined }}.",
                "html": f"<p>Message {n} for <b>{{{{ system.name }}}}</b></p>",
            },
            {
                "type": "whatsapp",
                "id": f"day{n}-wa",
                "channel": "wa-main",
                "to": "{{ system.mobile }}",
                "text": f"Day {n}: {{{{ formatter.first }}}}, order {{{{ body.order_id }}}}",
            },
        )

    return {
        "mapping": {
            "mobile": "body.phone",
            "email": "body.email",
            "name": "body.name",
            "channel": "wa-main",
            "attributes": {"city": "body.city"},
        },
        "steps": [
            {
                "type": "formatter",
                "id": "joined",
                "output": "joined",
                "op": "date.format",
                "input": "{{ body.signed_up }}",
                "options": {"format": "%d %B %Y"},
            },
            {
                "type": "formatter",
                "id": "first",
                "output": "first",
                "op": "text.split",
                "input": "{{ system.name }}",
                "options": {"separator": " ", "index": 0},
            },
            day(1),
            day(2),
            day(3),
        ],
    }


async def test_drip_campaign(
    processes: ProcessSystem, smtp: SmtpRecorder, graph: GraphApiServer
) -> None:
    processes.start_all()
    async with aiohttp.ClientSession() as session:
        api = Api(session, processes.url("config"), processes.settings.admin_token)
        await _channels(api, smtp, graph)
        await api.call("POST", "/api/v1/attributes", {"name": "city", "type": "text"}, expect=201)
        connector = await api.create_connector("drip")
        cid = connector["id"]
        person = {
            "name": "Ann Lee",
            "email": "Ann@Example.com",
            "phone": "(415) 555-0100",
            "city": "Oslo",
            "signed_up": "2026-03-04T10:00:00Z",
            "order_id": "A-7",
        }

        # The first event teaches the structure the configuration refers to.
        async def first_send() -> bool:
            async with session.post(connector["url"] + "?value=day0", json=person) as r:
                return r.status == 200

        await wait_for(first_send, what="ingest to know the connector")
        await wait_for(
            lambda: api.found(f"/api/v1/connectors/{cid}/structure"), what="the structure"
        )
        saved = await api.call(
            "PUT", f"/api/v1/connectors/{cid}", {"version": 1, "config": drip_config()}, expect=200
        )
        for n in (1, 2, 3):

            async def send(n: int = n) -> bool:
                async with session.post(connector["url"] + f"?value=day{n}", json=person) as r:
                    return r.status == 200

            assert await send()

        mails = await smtp.wait_for(3, timeout_s=60)
        texts = sorted(m.message.get_body(("plain",)).get_content().strip() for m in mails)
        assert texts == [
            f"Message {n} for Ann Lee in Oslo, member since 04 March 2026." for n in (1, 2, 3)
        ]
        assert sorted(str(m.message["Subject"]) for m in mails) == [
            f"Day {n}: hello Ann Lee" for n in (1, 2, 3)
        ]
        assert {tuple(m.rcpt_tos) for m in mails} == {("ann@example.com",)}

        messages = await graph.wait_for(3, timeout_s=60)
        bodies = sorted(m["body"]["text"]["body"] for m in messages)
        assert bodies == [f"Day {n}: Ann, order A-7" for n in (1, 2, 3)]
        assert {m["body"]["to"] for m in messages} == {"14155550100"}

        async def all_logged() -> dict[str, Any] | None:
            stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
            return stats if stats["succeeded"] == 4 else None

        await wait_for(all_logged, timeout_s=60, what="four events logged")
        contacts = await api.call("GET", "/api/v1/contacts?mobile=%2B14155550100")
        assert [c["email"] for c in contacts["items"]] == ["ann@example.com"]
        assert contacts["items"][0]["attributes"]["city"] == "Oslo"
        assert saved["version"] == 2


async def test_crash_after_send_before_ack_sends_once(
    processes: ProcessSystem, graph: GraphApiServer, smtp: SmtpRecorder, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"
    processes.env[crashing_executor.FAULT_ENV] = str(marker)
    for name in ("config", "ingest", "mapper"):
        processes.start(name)
    processes.start("executor", module="tests.support.crashing_executor")
    async with aiohttp.ClientSession() as session:
        api = Api(session, processes.url("config"), processes.settings.admin_token)
        await _channels(api, smtp, graph)
        config = {
            "steps": [
                {
                    "type": "whatsapp",
                    "id": "notify",
                    "channel": "wa-main",
                    "to": "{{ body.phone }}",
                    "text": "Hello {{ body.name }}",
                }
            ]
        }
        connector = await api.create_connector("once", config)
        cid = connector["id"]

        async def send() -> bool:
            async with session.post(
                connector["url"], json={"phone": "+14155550100", "name": "Ann"}
            ) as r:
                return r.status == 200

        await wait_for(send, what="the event accepted")
        await wait_for(marker.exists, timeout_s=30, what="the executor to crash after sending")
        executor = processes.procs["executor"][0]
        await wait_for(lambda: not executor.alive(), what="the executor process to be gone")
        assert len(graph.messages) == 1
        del processes.env[crashing_executor.FAULT_ENV]
        processes.procs.pop("executor")
        processes.start("executor")

        async def logged() -> dict[str, Any] | None:
            items = (await api.call("GET", f"/api/v1/connectors/{cid}/events"))["items"]
            return items[0] if items and items[0]["status"] == "succeeded" else None

        item = await wait_for(logged, timeout_s=60, what="the redelivered event logged")
        detail = await api.call("GET", f"/api/v1/connectors/{cid}/events/{item['event_id']}")
        step = detail["execution"][0]
        assert step["status"] == "succeeded"
        assert "not repeated" in step["output"]["note"]
        assert detail["attempts"] >= 2
        assert len(graph.messages) == 1  # sent once, despite the redelivery
