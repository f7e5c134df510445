"""Projections: received events and execution logs → the MongoDB event log and stats.

Two durable consumers, each handling a batch with one write for the log and one for
the counters.  Counting is tied to document creation and first verdict, as reported by
the store, so a redelivered batch is written again but not counted again.

An event's log entry is written once, whole, when its verdict comes within
``grace_s`` of its arrival (the usual case): the received projection puts back an event
younger than that for the rest of the time (a delayed ``nak``), and by then the verdict
has created the entry, so the received insert is a skipped duplicate.  On SecantusDB
that is an insert per event instead of an insert and an update (about a quarter of
the cost).  An event still waiting for its verdict is in the log as ``received`` after
``grace_s``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from pymongo.errors import ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError

from libs import events, natsio
from libs import logging as hlog
from libs import mongo as hmongo

_received = events.decoder(events.EventReceived).decode
_logs: Any = msgspec.json.Decoder(events.LogStreamEvent).decode


def received_doc(ev: events.EventReceived) -> dict[str, Any]:
    return {
        "_id": ev.event_id,
        "connector_id": ev.connector_id,
        "connector_version": ev.connector_version,
        "correlation_id": ev.correlation_id,
        "received_at": ev.occurred_at,
        "status": "received",
        "request": msgspec.to_builtins(ev.request),
        "body": ev.body,
        "custom_variables": ev.custom_variables,
        "idempotency_key": ev.idempotency_key,
        "replay_of": ev.replay_of,
    }


def outcome_doc(ev: events.ExecutionLogged) -> dict[str, Any]:
    doc = received_doc(ev.received)
    doc.pop("status")
    doc.update(
        status=ev.status,
        outcome_at=ev.occurred_at,
        mapping=msgspec.to_builtins(ev.mapping) if ev.mapping else None,
        drift=msgspec.to_builtins(ev.drift) if ev.drift else None,
        execution=msgspec.to_builtins(ev.steps),
        error=ev.error,
        attempts=ev.attempts,
        executed_version=ev.connector_version,
    )
    return doc


class Projector:
    """Each handler writes a whole batch at once; a batch that fails for a reason other
    than the database being unreachable is retried message by message, so one message
    that cannot be stored is set aside (terminated and logged) instead of blocking
    every message behind it forever."""

    def __init__(
        self,
        store: hmongo.Store,
        *,
        grace_s: float = 0.0,
        projected: Callable[[str, int], None] = lambda _name, _count: None,
    ) -> None:
        self.store = store
        self.grace_s = grace_s
        self.projected = projected  # (projection, messages written)

    async def on_received(self, msgs: Sequence[natsio.Msg]) -> None:
        pairs = []
        now = events.utcnow()
        for msg in msgs:
            try:
                event = _received(msg.data)
            except msgspec.DecodeError as exc:
                hlog.get().error("projector.undecodable", error=str(exc))
                await msg.term()
                continue
            wait_s = self.grace_s - (now - event.occurred_at).total_seconds()
            if wait_s > 0 and msg.metadata.num_delivered == 1:
                await msg.nak(delay=wait_s)  # once: its verdict may write the entry whole
                continue
            pairs.append((msg, received_doc(event)))
        await _isolating(pairs, self._received)
        self.projected("projector-received", len(pairs))

    async def _received(self, pairs: Sequence[tuple[natsio.Msg, dict[str, Any]]]) -> None:
        docs = [doc for _, doc in pairs]
        new = await self.store.record_received(docs)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for doc in docs:
            if doc["_id"] in new:
                counts[doc["connector_id"]]["received"] += 1
        await self.store.add_stats(counts)
        await _ack_all([msg for msg, _ in pairs])

    async def on_log(self, msgs: Sequence[natsio.Msg]) -> None:
        pairs = []
        for msg in msgs:
            try:
                pairs.append((msg, _logs(msg.data)))
            except msgspec.DecodeError as exc:
                hlog.get().error("projector.undecodable", error=str(exc))
                await msg.term()
        await _isolating(pairs, self._logs)
        self.projected("projector-logs", len(pairs))

    async def _logs(self, pairs: Sequence[tuple[natsio.Msg, Any]]) -> None:
        outcomes: list[dict[str, Any]] = []
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for _, ev in pairs:
            if isinstance(ev, events.IngestNotice):
                field = "duplicates" if ev.kind == "duplicate" else "rejected"
                counts[ev.connector_id][field] += 1
            elif not ev.dry_run:
                outcomes.append(outcome_doc(ev))
        first, created = await self.store.record_outcomes(outcomes)
        for doc in outcomes:
            if doc["_id"] in first:
                counts[doc["connector_id"]][
                    "failed" if doc["status"] == "failed" else "succeeded"
                ] += 1
            if doc["_id"] in created:  # the log overtook the received projection
                counts[doc["connector_id"]]["received"] += 1
        await self.store.add_stats(counts)
        await _ack_all([msg for msg, _ in pairs])


T = TypeVar("T")


async def _isolating(
    pairs: Sequence[tuple[natsio.Msg, T]],
    write: Callable[[Sequence[tuple[natsio.Msg, T]]], Awaitable[None]],
) -> None:
    if not pairs:
        return
    try:
        await write(pairs)
        return
    except UNREACHABLE:
        raise  # the database is away: the batch is redelivered after ack_wait
    except Exception as exc:
        hlog.get().warning("projector.batch_failed", error=repr(exc), count=len(pairs))
    for pair in pairs:
        try:
            await write([pair])
        except UNREACHABLE:
            raise
        except Exception as exc:
            hlog.get().error("projector.unstorable", error=repr(exc), subject=pair[0].subject)
            await pair[0].term()


# Errors that say "try again later", not "this message is bad".
UNREACHABLE = (ConnectionFailure, ServerSelectionTimeoutError, NetworkTimeout)


async def _ack_all(msgs: Sequence[natsio.Msg]) -> None:
    for msg in msgs:
        await msg.ack()
