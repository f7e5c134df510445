"""The services count their database work (``libs.infra.mongo.counting``): the figures
``make bench`` divides by events are real counts of the commands each service sent."""

from __future__ import annotations

import re
from collections import defaultdict

import aiohttp
import pytest

from libs.infra.mongo.counting import written
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration
EVENTS = 20
FILTER_ONLY = {
    "steps": [
        {
            "type": "filter",
            "id": "keep",
            "when": {"conditions": [{"attribute": "body.n", "op": "exists"}]},
        }
    ]
}


async def _counts(session: aiohttp.ClientSession, url: str, service: str) -> dict[str, float]:
    """``command:<name>`` and ``written:<collection>`` from the service's metrics."""
    async with session.get(url + "/metrics") as r:
        text = await r.text()
    out: dict[str, float] = defaultdict(float)
    pattern = (
        rf'^hookline_{service}_mongo_(commands|documents_written)_total\{{\w+="([^"]*)"\}} (\S+)$'
    )
    for kind, label, value in re.findall(pattern, text, re.M):
        out[f"{'command' if kind == 'commands' else 'written'}:{label}"] += float(value)
    return out


async def test_each_services_database_work_is_counted(
    system: InProcessSystem, api: Api, session: aiohttp.ClientSession
) -> None:
    connector, url = await system.ready_connector(api, "counted", FILTER_ONLY)
    cid = connector["id"]
    urls = {name: system.apps[name].url for name in ("config", "mapper", "executor")}
    before = {name: await _counts(session, u, name) for name, u in urls.items()}
    for n in range(EVENTS):
        async with session.post(url, json={"n": n}) as r:
            assert r.status == 200

    async def logged() -> bool:
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        return bool(stats["succeeded"] == EVENTS)

    await wait_for(logged, what="every event logged", timeout_s=30)
    after = {name: await _counts(session, u, name) for name, u in urls.items()}

    def grew(name: str, key: str) -> float:
        return after[name][key] - before[name][key]

    # The projector wrote each event's entry (once, or twice when the verdict came late).
    assert EVENTS <= grew("config", "written:events") <= 2 * EVENTS
    assert grew("config", "command:insert") + grew("config", "command:update") >= 1
    # The mapper learned the structure from the first event: one insert, or one per
    # fetch loop (two) when both loops' first batches came at once (one insert wins).
    assert 1 <= grew("mapper", "written:structures") <= 2
    # A filter is no side effect: the executor journaled nothing.
    assert grew("executor", "written:step_runs") == 0


def test_documents_written_per_command() -> None:
    assert written("insert", {"insert": "events", "documents": [{}, {}, {}]}) == 3
    assert written("update", {"update": "stats", "updates": [{}]}) == 1
    assert written("findAndModify", {"findAndModify": "step_runs"}) == 1
    assert written("find", {"find": "events"}) == 0
