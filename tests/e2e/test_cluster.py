"""The scale-out story, run for real: a 3-node NATS cluster (three ``nats-server``
processes routed to each other on loopback), streams and KV buckets with 3 replicas,
two copies of every service, and one NATS node SIGKILLed under load and restarted."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pymongo
import pytest

from libs.domain.events import EVENT_STATUSES
from libs.infra.settings import Settings
from tests.support.cluster import NatsCluster
from tests.support.fixtures import serve, wait_for
from tests.support.processes import ProcessSystem
from tests.support.system import Api, Receiver, forward_n, ingest_knows, running

pytestmark = pytest.mark.e2e

TOTAL = 1000  # events sent
SENDERS = 6  # concurrent senders, each alternating between the two ingest instances


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster(tmp_path / "nats")
    yield nats
    nats.stop()


@pytest.fixture
def system(cluster: NatsCluster, settings: Settings, tmp_path: Path) -> Iterator[ProcessSystem]:
    on_cluster = Settings(
        admin_token=settings.admin_token,
        nats_url=cluster.url,
        mongo_uri=settings.mongo_uri,
        mongo_db=settings.mongo_db,
        prefix=settings.prefix,
        data_dir=settings.data_dir,
        retry_backoff=settings.retry_backoff,
        ack_wait_s=settings.ack_wait_s,
        stream_replicas=3,
    )
    extra = {
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "1",
        "HOOKLINE_STREAM_REPLICAS": "3",
        "HOOKLINE_STREAM_MAX_BYTES": str(64 * 1024**2),
    }
    processes = ProcessSystem(on_cluster, tmp_path / "logs", extra)
    yield processes
    processes.stop()


def _logged(settings: Settings, connector_id: str) -> dict[str, str]:
    """Each event log entry of the connector: event id -> status (from Mongo), without
    the entries of requests that are not events (refusals, duplicates)."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(settings.mongo_uri)
    try:
        docs = client[settings.mongo_db]["events"].find(
            {"connector_id": connector_id, "status": {"$in": list(EVENT_STATUSES)}},
            {"status": 1},
        )
        return {doc["_id"]: doc["status"] for doc in docs}
    finally:
        client.close()


async def _progress(
    cluster: NatsCluster, settings: Settings, connector_id: str, receiver: Receiver
) -> str:
    """Where the events are: log entries by status, receiver calls, each consumer's
    backlog (for a failure's message)."""
    logged = await asyncio.to_thread(_logged, settings, connector_id)
    lines = [f"logged: {collections.Counter(logged.values())}, calls: {len(receiver.calls)}"]
    for name, stream in (await asyncio.to_thread(cluster.streams, True)).items():
        lines.append(f"{name}: {stream.get('state', {}).get('messages')} messages")
        for consumer in stream.get("consumer_detail") or []:
            keys = ("num_pending", "num_ack_pending", "num_redelivered", "num_waiting")
            lines.append(f"  {consumer['name']}: " + str({k: consumer.get(k) for k in keys}))
    return "\n".join(lines)


async def test_a_nats_node_killed_under_load_loses_and_repeats_nothing(
    cluster: NatsCluster, system: ProcessSystem, receiver: Receiver
) -> None:
    settings = system.settings
    started = time.monotonic()
    system.start_all(copies=2)
    ingests = system.urls("ingest")
    assert len(ingests) == 2 and all(len(system.procs[n]) == 2 for n in system.procs)
    streams = (settings.stream_events, settings.stream_logs, settings.stream_held)
    await wait_for(lambda: all(cluster.current(s, 3) for s in streams), what="R3 streams")
    async with aiohttp.ClientSession() as session:
        api = Api(session, system.url("config"), settings.admin_token)
        # The sender's retries of an event carry its "n": ingest stores it once however
        # often it is re-sent (an answer lost after the store is retried as a duplicate).
        config = forward_n(receiver.url + "/hook") | {"idempotency_key": "body.n"}
        connector = await api.create_connector("cluster", config)
        token = connector["url"].rsplit("/c/", 1)[1]
        urls = [f"{base}/c/{token}" for base in ingests]
        for url in urls:
            await wait_for(lambda u=url: ingest_knows(session, u), what=f"{url} knows it")
        ready_s = time.monotonic() - started

        answers: list[tuple[float, int, str]] = []  # (sent at, status, "stored"/"duplicate")
        accepted: set[int] = set()
        numbers = itertools.count()
        turn = itertools.count()

        def has_leader() -> bool:
            return bool(cluster.leader(settings.stream_events))

        async def sender() -> None:
            """Sends event after event, each to the next ingest instance in turn; after a
            503 it waits until the events stream has a leader again, then re-sends."""
            while (n := next(numbers)) < TOTAL:
                while n not in accepted:
                    sent = time.monotonic()
                    async with session.post(urls[next(turn) % 2], json={"n": n}) as r:
                        body = await r.json()
                    answers.append((sent, r.status, body.get("status", "")))
                    if 200 <= r.status < 300:
                        accepted.add(n)
                    else:
                        await wait_for(
                            lambda: asyncio.to_thread(has_leader), timeout_s=30, what="leader"
                        )

        load_started = time.monotonic()
        load = asyncio.gather(*(sender() for _ in range(SENDERS)))
        await wait_for(lambda: len(accepted) >= TOTAL // 4, timeout_s=30, what="a quarter sent")
        # Kill the leader of the events stream: the one that acks ingest's publishes.
        victim = cluster.index(cluster.leader(settings.stream_events))
        killed_at = time.monotonic()
        await asyncio.to_thread(cluster.kill, victim)
        calls_before_kill = len(receiver.calls)

        def recovered() -> bool:  # a 2xx for a request sent after the kill
            return any(200 <= status < 300 and at > killed_at for at, status, _ in answers)

        await wait_for(recovered, timeout_s=30, what="intake to recover from the kill")
        recovered_s = time.monotonic() - killed_at
        await asyncio.to_thread(cluster.restart, victim)
        restarted_at = time.monotonic()
        sent_by_restart = len(accepted)
        await load
        load_s = time.monotonic() - load_started

        # The restarted node rejoins: healthy, and every stream has 3 current replicas.
        def rejoined() -> bool:
            return cluster.healthy(victim) and all(cluster.current(s, 3) for s in streams)

        await wait_for(rejoined, timeout_s=60, what="the restarted node to catch up")
        rejoined_s = time.monotonic() - restarted_at

        # Every event is logged exactly once, and succeeded.
        cid = connector["id"]

        async def all_logged() -> dict[str, str] | None:
            logged = await asyncio.to_thread(_logged, settings, cid)
            done = len(logged) >= TOTAL and all(s == "succeeded" for s in logged.values())
            return logged if done else None

        try:
            logged = await wait_for(all_logged, timeout_s=60, what="every event logged")
        except AssertionError as exc:
            progress = await _progress(cluster, settings, cid, receiver)
            raise AssertionError(f"{exc}\n{progress}") from None
        assert len(logged) == TOTAL, len(logged)
        stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
        assert (stats["received"], stats["succeeded"], stats["failed"]) == (TOTAL, TOTAL, 0)

        # Each event reached the receiver, with the key of its one log entry; a repeat
        # carries the key of its first sending (so the receiver can drop it): no side
        # effect repeats without its key.
        keys: dict[int, set[str]] = {}
        for call in receiver.calls:
            keys.setdefault(int(call["body"]), set()).add(call["headers"]["Idempotency-Key"])
        assert set(keys) == set(range(TOTAL))
        assert all(len(k) == 1 for k in keys.values()), "a repeat with another key"
        assert {next(iter(k)) for k in keys.values()} == {f"{e}:call" for e in logged}
        repeats = len(receiver.calls) - TOTAL

        # Refusals (503 while the stream has no leader) are a small fraction.
        refused = [status for _, status, _ in answers if not 200 <= status < 300]
        duplicates = sum(1 for _, _, stored in answers if stored == "duplicate")
        assert set(refused) <= {503}, refused
        assert len(refused) <= TOTAL // 20, len(refused)
        print(
            f"cluster: ready in {ready_s:.1f}s; {TOTAL} events, {len(answers)} requests, "
            f"{len(answers) - len(refused)} 2xx ({duplicates} duplicates), {len(refused)} "
            f"503; 2xx again {recovered_s:.2f}s after the kill; {sent_by_restart} accepted "
            f"by the restart; node current {rejoined_s:.1f}s after it; load {load_s:.1f}s; "
            f"{repeats} repeated calls (same key), {calls_before_kill} calls before the kill"
        )


async def test_a_connector_rate_limit_holds_across_two_ingest_instances(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Each of two ingest instances admits half of a connector's rate_limit_per_s, so
    a burst spread over both gets the limit once (each on its own let in twice that)."""
    from services.ingest.app import PEERS
    from services.ingest.app import create_app as ingest_app

    rate = 10.0
    async with running(settings, only=("config", "ingest")) as system:
        system.apps["ingest-2"] = await serve(ingest_app(settings))
        instances = [system.apps["ingest"], system.apps["ingest-2"]]
        await wait_for(
            lambda: all(i.app[PEERS].count == 2 for i in instances), what="both count two"
        )
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector, _ = await system.ready_connector(api, "limited", forward_n("http://x/"))
        connector = await api.call(
            "PUT",
            f"/api/v1/connectors/{connector['id']}",
            {"version": connector["version"], "config": {"rate_limit_per_s": rate}},
            expect=200,
        )
        await system.knows(connector)
        token = connector["url"].rsplit("/c/", 1)[1]
        urls = [f"{i.url}/c/{token}" for i in instances]
        statuses: list[int] = []

        async def send(k: int) -> None:
            async with session.post(urls[k % 2], json={"n": k}) as r:
                statuses.append(r.status)

        began = time.monotonic()
        await asyncio.gather(*(send(k) for k in range(40)))
        took = time.monotonic() - began
        admitted = statuses.count(200)
        assert set(statuses) <= {200, 429}, statuses
        # The burst (one second's worth, split) plus what refilled while it ran; each
        # instance on its own would have let in twice that.
        assert rate <= admitted <= rate + rate * took + 1, (admitted, took)

        # One instance stops: the other learns it (its key is deleted) and takes the
        # whole limit again.
        await system.stop_one("ingest-2")
        survivor = instances[0].app[PEERS]
        await wait_for(lambda: survivor.count == 1, timeout_s=10, what="one instance left")
