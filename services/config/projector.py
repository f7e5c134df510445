"""Projections: received events and execution logs → the MongoDB event log and stats.

Two durable consumers, each handling a batch with one ``bulk_write`` for the log and
one for the counters.  Counting is tied to document creation and first verdict, as
reported by the store, so a redelivered batch is written again but not counted again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec

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
    def __init__(self, store: hmongo.Store) -> None:
        self.store = store

    async def on_received(self, msgs: Sequence[natsio.Msg]) -> None:
        docs, good = [], []
        for msg in msgs:
            try:
                docs.append(received_doc(_received(msg.data)))
                good.append(msg)
            except msgspec.DecodeError as exc:
                hlog.get().error("projector.undecodable", error=str(exc))
                await msg.term()
        new = await self.store.record_received(docs)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for doc in docs:
            if doc["_id"] in new:
                counts[doc["connector_id"]]["received"] += 1
        await self.store.add_stats(counts)
        await _ack_all(good)

    async def on_log(self, msgs: Sequence[natsio.Msg]) -> None:
        outcomes: list[dict[str, Any]] = []
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        good = []
        for msg in msgs:
            try:
                ev = _logs(msg.data)
            except msgspec.DecodeError as exc:
                hlog.get().error("projector.undecodable", error=str(exc))
                await msg.term()
                continue
            good.append(msg)
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
        await _ack_all(good)


async def _ack_all(msgs: Sequence[natsio.Msg]) -> None:
    for msg in msgs:
        await msg.ack()
