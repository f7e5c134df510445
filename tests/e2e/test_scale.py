"""Several instances on one machine, and graceful shutdown under load."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from libs.infra.settings import Settings
from libs.local import embedded
from tests.support.fixtures import wait_for
from tests.support.processes import ProcessSystem
from tests.support.system import Api, Receiver, forward_n, ingest_knows

pytestmark = pytest.mark.e2e


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[ProcessSystem]:
    system = ProcessSystem(settings, tmp_path / "logs", {"HOOKLINE_ALLOW_PRIVATE_TARGETS": "1"})
    yield system
    system.stop()


async def _counter(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(url + "/metrics") as r:
        text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _send_all(
    session: aiohttp.ClientSession,
    urls: list[str],
    numbers: range,
    accepted: list[int],
    concurrency: int = 40,
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with sem, session.post(urls[n % len(urls)], json={"n": n}) as r:
            if r.status == 200:
                accepted.append(n)

    await asyncio.gather(*(one(n) for n in numbers))


async def _all_done(api: Api, cid: str, expected: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return stats if stats["succeeded"] + stats["failed"] >= expected else None

    result: dict[str, Any] = await wait_for(done, timeout_s=180, what=f"{expected} events")
    return result


async def _exactly_once(api: Api, cid: str, receiver: Receiver, accepted: list[int]) -> None:
    stats = await _all_done(api, cid, len(accepted))
    assert (stats["received"], stats["succeeded"], stats["failed"]) == (
        len(accepted),
        len(accepted),
        0,
    )
    seen: set[str] = set()
    before = ""
    while True:  # page through the whole log
        query = "?" + urlencode({"limit": 500} | ({"before": before} if before else {}))
        page = await api.call("GET", f"/api/v1/connectors/{cid}/events{query}")
        # The readiness probes' refusals are logged too (status rejected): not events.
        seen.update(i["event_id"] for i in page["items"] if i["status"] != "rejected")
        if not page["next_before"]:
            break
        before = page["next_before"]
    assert len(seen) == len(accepted)
    delivered = sorted(int(c["body"]) for c in receiver.calls)
    assert delivered == sorted(accepted)  # each once: no loss, no duplicate


async def test_two_copies_of_each_service(processes: ProcessSystem, receiver: Receiver) -> None:
    processes.start("config")
    for name in ("ingest", "mapper", "executor"):
        processes.start(name)
        processes.start(name, port=embedded.free_port())
    total = 2000
    async with aiohttp.ClientSession() as session:
        api = Api(session, processes.url("config"), processes.settings.admin_token)
        connector = await api.create_connector("scaled", forward_n(receiver.url + "/n"))
        token = connector["url"].rsplit("/c/", 1)[1]
        urls = [f"{p.url}/c/{token}" for p in processes.procs["ingest"]]

        async def both_know() -> bool:
            return all([await ingest_knows(session, url) for url in urls])

        await wait_for(both_know, what="both ingest copies to know the connector")
        accepted: list[int] = []
        await _send_all(session, urls, range(total), accepted)
        assert len(accepted) == total
        await _exactly_once(api, connector["id"], receiver, accepted)
        for name, metric in (
            ("mapper", 'hookline_mapper_messages_total{outcome="mapped"}'),
            ("executor", 'hookline_executor_messages_total{outcome="succeeded"}'),
        ):
            shares = [await _counter(session, p.url, metric) for p in processes.procs[name]]
            assert all(share > 0 for share in shares), (name, shares)
            assert sum(shares) >= total


@pytest.mark.parametrize("victim", ["executor", "mapper"])
async def test_sigterm_under_load(
    processes: ProcessSystem, receiver: Receiver, victim: str
) -> None:
    processes.start_all()
    total = 600
    async with aiohttp.ClientSession() as session:
        api = Api(session, processes.url("config"), processes.settings.admin_token)
        connector = await api.create_connector("graceful", forward_n(receiver.url + "/n"))
        url = connector["url"]

        await wait_for(lambda: ingest_knows(session, url), what="ingest to know the connector")
        accepted: list[int] = []
        load = asyncio.create_task(_send_all(session, [url], range(total), accepted, 10))
        await wait_for(lambda: len(receiver.calls) >= 50, what="work in flight")
        proc = processes.procs.pop(victim)[0]
        proc.popen.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.popen.wait, 30)
        assert code == 0, embedded.tail(proc.log_path)
        log = proc.log_path.read_text()
        assert re.search(r'"event": "service.stopped"', log)
        await load
        processes.start(victim)
        await _exactly_once(api, connector["id"], receiver, accepted)
