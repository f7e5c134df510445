"""The projector over the in-memory store and messages (no NATS, no database): every
event is counted once however its received message and its verdict race, repeat or
interleave; an entry the database refuses is stored degraded; nothing is dropped.
The store passes the same contract as MongoDB (tests/integration/test_port_contracts.py).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.domain import events
from libs.infra.mongo import store as hmongo
from services.config import projector as projector_module
from services.config.projector import RETRY_UNSTORABLE_S, Projector
from tests.support.memory import MemoryMsg, MemoryStore

_ids = itertools.count()


def received(
    event_id: str | None = None, cid: str = "c1", body: Any = None, age_s: float = 10.0
) -> events.EventReceived:
    event_id = event_id or f"e{next(_ids)}"
    return events.EventReceived(
        event_id=event_id,
        connector_id=cid,
        connector_version=1,
        occurred_at=events.utcnow() - timedelta(seconds=age_s),
        correlation_id=event_id,
        request=events.Request(
            method="POST", headers={}, query={}, source_ip=None, content_type=None, size=0
        ),
        body={"n": 1} if body is None else body,
        custom_variables={},
        raw=b"{}",
    )


def logged(
    ev: events.EventReceived, status: str = "succeeded", **kw: Any
) -> events.ExecutionLogged:
    return events.ExecutionLogged(
        event_id=ev.event_id,
        connector_id=ev.connector_id,
        connector_version=1,
        occurred_at=events.utcnow(),
        correlation_id=ev.correlation_id,
        status=status,  # type: ignore[arg-type]
        steps=[],
        received=ev,
        **kw,
    )


def msg(item: events.EventReceived | events.ExecutionLogged | events.IngestNotice) -> MemoryMsg:
    """The item as the stream delivers it, stored when it occurred."""
    return MemoryMsg(events.encode(item), stored_at=item.occurred_at)


async def stats(store: MemoryStore, cid: str = "c1") -> dict[str, int]:
    got = await store.get_stats(cid)
    return {k: v for k, v in got.items() if k != "since" and v}


async def test_received_then_verdict_counts_each_once() -> None:
    store = MemoryStore()
    projector = Projector(store)
    ev = received()
    first = msg(ev)
    await projector.on_received([first])
    assert (await store.get_event("c1", ev.event_id) or {})["status"] == "received"
    verdict = msg(logged(ev, "failed", error="boom"))
    await projector.on_log([verdict])
    entry = await store.get_event("c1", ev.event_id)
    assert entry is not None and (entry["status"], entry["error"]) == ("failed", "boom")
    assert await stats(store) == {"received": 1, "failed": 1}
    # Both redelivered: written again, counted again never.
    await projector.on_received([first.redelivered()])
    await projector.on_log([verdict.redelivered()])
    assert await stats(store) == {"received": 1, "failed": 1}
    assert (first.settled, verdict.settled) == (["ack"], ["ack"])


async def test_a_verdict_that_overtakes_its_received_event_counts_it_received() -> None:
    store = MemoryStore()
    projector = Projector(store)
    ev = received()
    await projector.on_log([msg(logged(ev))])
    assert await stats(store) == {"received": 1, "succeeded": 1}
    late = msg(ev)
    await projector.on_received([late])
    assert late.settled == ["ack"]
    assert await stats(store) == {"received": 1, "succeeded": 1}
    entry = await store.get_event("c1", ev.event_id)
    assert entry is not None and entry["status"] == "succeeded"  # not back to received


class Clock:
    def __init__(self) -> None:
        self.now = events.utcnow()

    def __call__(self) -> datetime:
        return self.now


async def test_a_young_event_waits_unacked_and_is_written_when_its_grace_ends() -> None:
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=5.0, clock=clock)
    young = msg(received(age_s=0.0))
    await projector.on_received([young])
    assert young.settled == [] and projector.waiting == 1  # held, not nak'ed: one delivery
    assert young.data == b""  # its payload is not kept while it waits: the stream has it
    assert await projector.flush() == 0 and len(store.events) == 0  # not yet due
    clock.now += timedelta(seconds=5.1)
    assert await projector.flush() == 1
    assert young.settled == ["nak"] and young.delays == [None] and len(store.events) == 0
    await projector.on_received([again := young.redelivered()])  # whole, from the stream
    assert again.settled == ["ack"] and len(store.events) == 1 and projector.waiting == 0
    assert await stats(store) == {"received": 1}


async def test_a_waiting_event_whose_verdict_came_is_acked_without_a_write() -> None:
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=5.0, clock=clock)
    ev = received(age_s=0.0)
    young = msg(ev)
    await projector.on_received([young])
    await projector.on_log([msg(logged(ev))])  # the verdict writes the entry whole
    assert young.settled == ["ack"] and projector.waiting == 0  # acked at once
    writes = len(store.events.calls)
    clock.now += timedelta(seconds=6)
    assert await projector.flush() == 0
    assert young.settled == ["ack"] and len(store.events.calls) == writes  # no second write
    assert await stats(store) == {"received": 1, "succeeded": 1}


async def test_a_received_message_after_its_verdict_is_acked_without_a_write() -> None:
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=5.0, clock=clock)
    ev = received(age_s=0.0)
    await projector.on_log([msg(logged(ev))])
    writes = len(store.events.calls)
    late = msg(ev)
    await projector.on_received([late])
    assert late.settled == ["ack"] and projector.waiting == 0
    assert len(store.events.calls) == writes
    assert await stats(store) == {"received": 1, "succeeded": 1}


async def test_verdicts_are_forgotten_after_their_horizon_and_nothing_else_is() -> None:
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=1.0, max_wait_s=1.0, clock=clock)
    first, second = received(age_s=0.0), received(age_s=0.0)
    await projector.on_log([msg(logged(first))])
    clock.now += timedelta(seconds=3)
    await projector.on_log([msg(logged(second))])
    clock.now += timedelta(seconds=1.5)  # first is 4.5 s old, past 2 * (1 + 1)
    await projector.flush()
    for ev, remembered in ((first, False), (second, True)):
        again = msg(ev)
        writes = len(store.events.calls)
        await projector.on_received([again])
        assert again.settled == ["ack"]
        assert (len(store.events.calls) == writes) is remembered  # forgotten: written again
    assert await stats(store) == {"received": 2, "succeeded": 2}  # never counted twice


async def test_no_message_waits_longer_than_max_wait_and_closing_gives_them_all_back() -> None:
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=60.0, max_wait_s=2.0, clock=clock)
    first, second = msg(received(age_s=0.0)), msg(received(age_s=0.0))
    await projector.on_received([first, second])
    clock.now += timedelta(seconds=2.5)
    await projector.on_received([m := msg(received(age_s=0.0))])
    assert await projector.flush() == 2  # bounded by max_wait_s, not the grace
    assert (first.settled, second.settled, m.settled) == (["nak"], ["nak"], [])
    assert await projector.flush(everything=True) == 1 and m.settled == ["nak"]
    assert projector.waiting == 0
    await projector.on_received([first.redelivered(), second.redelivered(), m.redelivered()])
    assert len(store.events) == 3


async def test_notices_dry_runs_and_projected_counts() -> None:
    store = MemoryStore()
    seen: list[tuple[str, int]] = []
    projector = Projector(store, projected=lambda name, n: seen.append((name, n)))
    ev = received()

    def notice(kind: str) -> events.IngestNotice:
        return events.IngestNotice(
            event_id=f"n{next(_ids)}",
            connector_id="c1",
            connector_version=1,
            occurred_at=events.utcnow(),
            correlation_id="x",
            kind=kind,  # type: ignore[arg-type]
            reason="r",
            status=409 if kind == "duplicate" else 400,
        )

    batch = [msg(notice("duplicate")), msg(notice("rejected")), msg(logged(ev, dry_run=True))]
    await projector.on_log(batch)
    assert [m.settled for m in batch] == [["ack"]] * 3
    assert await stats(store) == {"duplicates": 1, "rejected": 1}
    assert len(store.events) == 0  # a dry run's verdict is not the event's
    assert seen == [("projector-logs", 3)]


async def test_an_entry_too_large_is_stored_degraded_and_counted_once() -> None:
    store = MemoryStore()
    big, small = received(body={"text": "x" * 17_000_000}), received()
    msgs = [msg(big), msg(small)]
    await Projector(store).on_received(msgs)
    assert [m.settled for m in msgs] == [["ack"], ["ack"]]
    entry = await store.get_event("c1", big.event_id)
    assert entry is not None and "too large" in entry["degraded"] and "body" not in entry
    assert await stats(store) == {"received": 2}


async def test_an_entry_that_cannot_be_stored_even_degraded_waits() -> None:
    store = MemoryStore()
    huge_id = received(event_id="e" * 17_000_000)  # even its id is over the limit
    fine = received()
    msgs = [msg(huge_id), msg(fine)]
    await Projector(store).on_received(msgs)
    assert msgs[0].settled == ["nak"] and msgs[0].delays == [RETRY_UNSTORABLE_S]
    assert msgs[1].settled == ["ack"]
    assert await stats(store) == {"received": 1}


async def test_undecodable_messages_are_salvaged_or_terminated() -> None:
    store = MemoryStore()
    odd = msg(received(event_id="odd"))
    odd.data = odd.data.replace(b'"size":0', b'"size":"zero"')
    garbage = MemoryMsg(b"not json at all")
    await Projector(store).on_received([odd, garbage])
    assert (odd.settled, garbage.settled) == (["ack"], ["term"])
    entry = await store.get_event("c1", "odd")
    assert entry is not None and entry["degraded"].startswith("undecodable message")
    assert await stats(store) == {"received": 1}


async def test_the_database_away_leaves_the_batch_unsettled() -> None:
    store = MemoryStore()
    store.offline = True
    pending = [msg(received()), msg(received())]
    with pytest.raises(hmongo.UNREACHABLE):
        await Projector(store).on_received(pending)
    assert [m.settled for m in pending] == [[], []]  # redelivered after ack_wait
    store.offline = False
    await Projector(store).on_received([m.redelivered() for m in pending])
    assert await stats(store) == {"received": 2}


# ---------------------------------------------------------------- any interleaving

Delivery = tuple[int, str, int]  # (event index, "received" | "log", batch number)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[str], list[Delivery]]:
    """Events with their verdicts, and an order of deliveries in batches: each message
    at least once, some redelivered, received and log messages interleaved."""
    verdicts = draw(st.lists(st.sampled_from(["succeeded", "failed"]), min_size=1, max_size=6))
    sent: list[Delivery] = []
    for i in range(len(verdicts)):
        for kind in ("received", "log"):
            for _ in range(draw(st.integers(1, 3))):
                sent.append((i, kind, draw(st.integers(0, 3))))
    return verdicts, draw(st.permutations(sent))


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_every_event_is_counted_once_whatever_the_deliveries(
    case: tuple[list[str], list[Delivery]],
) -> None:
    verdicts, sent = case
    asyncio.run(_project(verdicts, sent))


async def _project(verdicts: list[str], sent: list[Delivery]) -> None:
    store = MemoryStore()
    projector = Projector(store)
    evs = [received() for _ in verdicts]
    count: dict[tuple[int, str], int] = {}
    settled: list[MemoryMsg] = []
    for number in range(4):  # the batches of both consumers run side by side
        on_received: list[MemoryMsg] = []
        on_log: list[MemoryMsg] = []
        for i, kind, batch in sent:
            if batch != number:
                continue
            count[(i, kind)] = count.get((i, kind), 0) + 1
            item = evs[i] if kind == "received" else logged(evs[i], verdicts[i])
            m = MemoryMsg(events.encode(item), delivered=count[(i, kind)])
            (on_received if kind == "received" else on_log).append(m)
        await asyncio.gather(projector.on_received(on_received), projector.on_log(on_log))
        settled += on_received + on_log
    assert all(m.settled == ["ack"] for m in settled)
    expected: dict[str, int] = {
        "received": len(verdicts),
        **{v: verdicts.count(v) for v in ("succeeded", "failed") if v in verdicts},
    }
    assert await stats(store) == expected
    for ev, verdict in zip(evs, verdicts, strict=True):
        entry = await store.get_event("c1", ev.event_id)
        assert entry is not None and entry["status"] == verdict


async def test_while_verdicts_flow_a_received_event_waits_longer_for_its_own() -> None:
    """A backlog (verdicts are being written, late): a received entry is not written at
    its grace, only at ``max_wait_s``; its verdict comes first and writes it once."""
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=2.0, max_wait_s=10.0, clock=clock)
    behind = received(age_s=0.0)
    clock.now = behind.occurred_at
    await projector.on_received([waiting := msg(behind)])
    clock.now += timedelta(seconds=1)
    await projector.on_log([msg(logged(received(age_s=0.0)))])  # another event's verdict
    clock.now += timedelta(seconds=1.5)  # past the grace
    assert await projector.flush() == 0 and waiting.settled == []  # still waiting
    await projector.on_log([msg(logged(received(age_s=0.0)))])
    clock.now += timedelta(seconds=3)
    await projector.on_log([msg(logged(behind))])
    assert waiting.settled == ["ack"]
    assert (await store.get_event("c1", behind.event_id) or {})["status"] == "succeeded"
    assert store.events.calls.count("update") == 0  # the entry was written once, whole
    # Verdicts stop: an event past its grace (3 s old, not 10) is written at once.
    clock.now += timedelta(seconds=3)
    young = msgspec.structs.replace(received(), occurred_at=clock.now - timedelta(seconds=3))
    await projector.on_received([late := msg(young)])
    assert late.settled == ["ack"]
    assert (await store.get_event("c1", young.event_id) or {})["status"] == "received"


async def test_what_the_projector_remembers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest REMEMBERED verdicts only (a received message after an older one is
    written: a duplicate, not counted), and the heap of waiting ids is rebuilt when
    settled ones outnumber those still waiting."""
    monkeypatch.setattr(projector_module, "REMEMBERED", 3)
    store, clock = MemoryStore(), Clock()
    projector = Projector(store, grace_s=5.0, max_wait_s=10.0, clock=clock)
    evs = [received(age_s=0.0) for _ in range(1500)]
    await projector.on_received([msg(ev) for ev in evs])
    assert projector.waiting == 1500
    await projector.on_log([msg(logged(ev)) for ev in evs])
    assert projector.waiting == 0
    await projector.flush()
    assert len(projector._waiting) <= 1024  # the settled ids are gone
    clock.now += timedelta(seconds=6)  # past the grace: a received message is not held
    for n, ev in enumerate(evs[-5:]):
        again = msg(ev)
        writes = len(store.events.calls)
        await projector.on_received([again])
        assert again.settled == ["ack"]
        assert (len(store.events.calls) == writes) is (n >= 2)  # the newest 3: no write
    assert (await stats(store))["received"] == 1500
