"""The executor's step journal in MongoDB (``step_runs``): which steps of an event are
claimed, and which are done with what output, so that a redelivered event skips the
steps that already ran."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import msgspec
from pymongo.errors import DuplicateKeyError

from libs.infra.mongo import store as hmongo
from libs.infra.mongo.codec import from_bson, to_bson
from services.executor.core import engine


class MongoJournal:
    """Step runs in Mongo (``step_runs``): a claim with a lease, then the done record.

    The claim is an insert under the (event, step) id, so of two deliveries of one event
    that overlap (a slow consumer whose messages were redelivered elsewhere) only one
    runs the step; the other sees ``busy`` and retries later.  A claim whose holder
    crashed expires after the lease and is taken over.
    """

    def __init__(
        self, store: hmongo.Store, event_id: str, lease_s: float, expire_at: datetime
    ) -> None:
        self.store = store
        self.event_id = event_id
        self.lease_s = lease_s
        self.expire_at = expire_at  # removed then by the TTL index, with the event's log

    def _id(self, step_id: str) -> str:
        return f"{self.event_id}:{step_id}"

    async def claim(self, step_id: str) -> engine.Claim:
        now = time.time()
        doc = {
            "event_id": self.event_id,
            "step_id": step_id,
            "state": "claimed",
            "until": now + self.lease_s,
            "expire_at": self.expire_at,
        }
        try:
            await self.store.step_runs.insert_one({"_id": self._id(step_id), **doc})
            return engine.Claim("run")
        except DuplicateKeyError:
            pass
        taken = await self.store.step_runs.find_one_and_update(
            {"_id": self._id(step_id), "state": "claimed", "until": {"$lt": now}},
            {"$set": doc},
        )
        if taken is not None:
            return engine.Claim("run")  # the previous holder's lease ran out
        row = await self.store.step_runs.find_one({"_id": self._id(step_id)})
        if row is not None and row.get("state") == "done":
            return engine.Claim("done", from_bson(row.get("output")))
        return engine.Claim("busy")

    async def release(self, step_id: str) -> None:
        await self.store.step_runs.delete_one({"_id": self._id(step_id), "state": "claimed"})

    async def record(self, step_id: str, output: Any) -> None:
        await self.store.step_runs.replace_one(
            {"_id": self._id(step_id)},
            {
                "event_id": self.event_id,
                "step_id": step_id,
                "state": "done",
                "output": journal_output(output),
                "expire_at": self.expire_at,
            },
            upsert=True,
        )


async def done_outputs(store: hmongo.Store, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The outputs of the steps already done, by event and step, in one query for a
    batch (only redelivered events can have any)."""
    rows = await store.step_runs.find({"event_id": {"$in": event_ids}, "state": "done"}).to_list(
        None
    )
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["event_id"], {})[row["step_id"]] = from_bson(row.get("output"))
    return out


MAX_JOURNAL_OUTPUT_BYTES = 64 * 1024


def journal_output(output: Any) -> Any:
    """An action's output as the journal can always store it: exact (big integers and
    odd keys through the Mongo codec) and bounded (a larger one is kept as the start
    of its JSON text, marked truncated)."""
    try:
        text = msgspec.json.encode(output)
    except (TypeError, msgspec.EncodeError):
        text = msgspec.json.encode(repr(output))
        output = repr(output)[:MAX_JOURNAL_OUTPUT_BYTES]
    if len(text) <= MAX_JOURNAL_OUTPUT_BYTES:
        return to_bson(output)
    head = text[:MAX_JOURNAL_OUTPUT_BYTES].decode("utf-8", "ignore")
    return {"truncated": True, "size": len(text), "json_start": head}
