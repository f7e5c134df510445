"""The MongoDB adapter. Every Mongo call of Hookline lives in ``libs/infra/mongo/`` (this
module: connectors, versions, structures, the event log and stats; ``contacts``: the CRM
repository) or in a service's ``adapters/`` package (the executor's step journal).

PyMongo's async API (``pymongo.AsyncMongoClient``, motor's successor).  Hot paths
write in batches (``bulk_write``); single-document round trips are for operator
actions only (saves, rotations, resets), which are rare.

Documents that hold values from outside (event log entries, structures, connector
configurations and versions) are written through ``codec.to_bson`` and read
through ``from_bson``: every JSON value comes back as it was sent, whatever its
integers or keys (see that module).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument, UpdateOne, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from libs.domain import search
from libs.domain.events import VERDICTS
from libs.infra.mongo.codec import from_bson, to_bson
from libs.infra.settings import Settings

Doc = dict[str, Any]
# Errors that say "the database is away, try again later", not "this input is bad".
UNREACHABLE = (ConnectionFailure, ServerSelectionTimeoutError, NetworkTimeout)
KEEP_VERSIONS = 20
# A connector's counters: events received, events by verdict, duplicates and rejections.
STAT_FIELDS = ("received", *VERDICTS, "duplicates", "rejected", "handshakes")
# What a list of log entries reads of each: its summary and its search terms.
SUMMARY_FIELDS = (
    "_id",
    "received_at",
    "status",
    "connector_version",
    "error",
    "reason",
    "replay_of",
    "terms",
)
# Fields of a log entry that come from the received event and never change.
RECEIVED_FIELDS = (
    "connector_id",
    "connector_version",
    "correlation_id",
    "received_at",
    "request",
    "body",
    "custom_variables",
    "idempotency_key",
    "replay_of",
)


def _read(doc: Doc | None) -> Doc | None:
    return None if doc is None else from_bson(doc)  # type: ignore[no-any-return]


def _refusals(exc: BulkWriteError, docs: Sequence[Doc], refused: dict[str, str] | None) -> set[int]:
    """The indices of ``docs`` an unordered bulk write refused.  Duplicate keys are
    expected (a redelivery); any other refusal is noted in ``refused`` by id, or, when
    the caller passed none, raised."""
    errors = exc.details.get("writeErrors", [])
    other = [e for e in errors if e.get("code") != 11000]
    if other and refused is None:
        raise exc
    for e in other:
        refused[docs[e["index"]]["_id"]] = str(e.get("errmsg", ""))[:300]  # type: ignore[index]
    return {e["index"] for e in errors}


class StaleVersion(Exception):
    """A save based on a version that is no longer the latest."""


def client(
    settings: Settings, listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncMongoClient[Doc]:
    """The service's client; ``listeners`` see every command (``counting``)."""
    return AsyncMongoClient(
        settings.mongo_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connect=False,
        event_listeners=list(listeners),
    )


class Store:
    """Repositories over one database. Small methods, one per question asked."""

    def __init__(self, mongo: AsyncMongoClient[Doc], db_name: str) -> None:
        self.mongo = mongo
        self.db: AsyncDatabase[Doc] = mongo[db_name]
        self.connectors = self.db["connectors"]
        self.versions = self.db["connector_versions"]
        self.structures = self.db["structures"]
        self.events = self.db["events"]
        self.stats = self.db["stats"]
        self.contacts = self.db["contacts"]
        self.channels = self.db["channels"]
        self.agents = self.db["agents"]
        self.attributes = self.db["attributes"]
        self.step_runs = self.db["step_runs"]
        self.bulk_replays = self.db["bulk_replays"]
        self.alert_windows = self.db["alert_windows"]

    async def ping(self) -> bool:
        try:
            await self.db.command("ping")
        except PyMongoError:
            return False
        return True

    async def ensure_indexes(self) -> None:
        await self.connectors.create_index("token", unique=True)
        await self.versions.create_index(
            [("connector_id", ASCENDING), ("version", ASCENDING)], unique=True
        )
        await self.events.create_index([("connector_id", ASCENDING), ("received_at", DESCENDING)])
        # Search by value (libs.domain.search): one multikey index over the entries'
        # terms, newest first within a term.
        await self.events.create_index(
            [("connector_id", ASCENDING), ("terms", ASCENDING), ("received_at", DESCENDING)],
            name="search",
        )
        # Retention: each entry and step record says when it goes (``expire_at``).
        await self.events.create_index("expire_at", expireAfterSeconds=0)
        await self.step_runs.create_index("expire_at", expireAfterSeconds=0)
        await self.contacts.create_index("mobile", unique=True, sparse=True)
        await self.contacts.create_index([("email", ASCENDING), ("created_at", ASCENDING)])
        # The executor reads a redelivered batch's done steps by event id.
        await self.step_runs.create_index("event_id")
        await self.bulk_replays.create_index([("state", ASCENDING), ("lease_until", ASCENDING)])
        await self.bulk_replays.create_index(
            [("connector_id", ASCENDING), ("created_at", DESCENDING)]
        )
        # A finished job is kept as long as the log it replayed.
        await self.bulk_replays.create_index("expire_at", expireAfterSeconds=0)
        await self.alert_windows.create_index("expire_at", expireAfterSeconds=0)

    # ------------------------------------------------------------ connectors

    async def insert_connector(self, doc: Doc) -> None:
        doc = to_bson(doc)
        await self.connectors.insert_one(doc)
        await self.versions.insert_one(
            {
                "connector_id": doc["_id"],
                "version": doc["version"],
                "config": doc["config"],
                "saved_at": doc["updated_at"],
            }
        )

    async def list_connectors(self) -> list[Doc]:
        rows = await self.connectors.find({}).sort("created_at", ASCENDING).to_list(None)
        return [from_bson(r) for r in rows]

    async def get_connector(self, connector_id: str) -> Doc | None:
        return _read(await self.connectors.find_one({"_id": connector_id}))

    async def delete_connector(self, connector_id: str) -> bool:
        result = await self.connectors.delete_one({"_id": connector_id})
        await self.versions.delete_many({"connector_id": connector_id})
        return result.deleted_count == 1

    async def save_config(
        self, connector_id: str, based_on: int, changes: Mapping[str, Any], now: datetime
    ) -> Doc:
        """Compare-and-set on ``version``: two racing saves cannot both win.

        The version row is inserted first under a unique index, so even if the
        connector update below were interrupted no version number is used twice.
        """
        new_version = based_on + 1
        changes = to_bson(dict(changes))
        try:
            await self.versions.insert_one(
                {
                    "connector_id": connector_id,
                    "version": new_version,
                    "config": changes.get("config"),
                    "saved_at": now,
                }
            )
        except DuplicateKeyError:
            raise StaleVersion from None
        doc = await self.connectors.find_one_and_update(
            {"_id": connector_id, "version": based_on},
            {"$set": {**changes, "version": new_version, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self.versions.delete_one({"connector_id": connector_id, "version": new_version})
            raise StaleVersion
        await self._prune_versions(connector_id, new_version)
        return from_bson(doc)  # type: ignore[no-any-return]

    async def _prune_versions(self, connector_id: str, latest: int) -> None:
        await self.versions.delete_many(
            {"connector_id": connector_id, "version": {"$lte": latest - KEEP_VERSIONS}}
        )

    async def list_versions(self, connector_id: str) -> list[Doc]:
        cursor = self.versions.find({"connector_id": connector_id}).sort("version", DESCENDING)
        return [from_bson(r) for r in await cursor.limit(KEEP_VERSIONS).to_list(None)]

    async def get_version(self, connector_id: str, version: int) -> Doc | None:
        row = await self.versions.find_one({"connector_id": connector_id, "version": version})
        return _read(row)

    async def set_fields(self, connector_id: str, fields: Mapping[str, Any]) -> Doc | None:
        """Fields of the connector that are not its versioned configuration (its token,
        ``paused``); the connector after the change, None if there is none."""
        return _read(
            await self.connectors.find_one_and_update(
                {"_id": connector_id},
                {"$set": to_bson(dict(fields))},
                return_document=ReturnDocument.AFTER,
            )
        )

    # ------------------------------------------------------------ structures

    async def get_structure(self, connector_id: str) -> Doc | None:
        return _read(await self.structures.find_one({"_id": connector_id}))

    async def insert_structure_if_absent(self, connector_id: str, doc: Doc) -> bool:
        """The first event's structure wins; later ones don't overwrite it."""
        try:
            await self.structures.insert_one(to_bson({"_id": connector_id, **doc}))
        except DuplicateKeyError:
            return False
        return True

    async def replace_structure(self, connector_id: str, doc: Doc) -> None:
        await self.structures.replace_one({"_id": connector_id}, to_bson(doc), upsert=True)

    # ------------------------------------------------------------ event log

    async def record_received(
        self, docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> set[str]:
        """Insert log entries for received events; returns the ids that were new.

        A plain unordered insert (the fast path of a document store): an entry that
        exists already (a redelivery, or the verdict got there first) is a duplicate-key
        error, which is ignored, and the ids tell the caller which events to count.
        With ``refused``, an entry the database refuses (too large, say) is put there
        with the reason instead of failing the batch: the others are written and new.
        """
        return await self._insert_new(self.events, [to_bson(d) for d in docs], refused)

    @staticmethod
    async def _insert_new(
        col: AsyncCollection[Doc], docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> set[str]:
        """One unordered ``insert_many``; the ids inserted (duplicates are skipped)."""
        if not docs:
            return set()
        try:
            await col.insert_many(docs, ordered=False)
            return {d["_id"] for d in docs}
        except BulkWriteError as exc:
            failed = _refusals(exc, docs, refused)
            return {d["_id"] for i, d in enumerate(docs) if i not in failed}

    async def record_outcomes(
        self, docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> tuple[set[str], set[str]]:
        """Write executor verdicts. Returns (ids whose first verdict this is, ids whose
        log entry this created), so the caller counts each event once.

        First one unordered insert of the whole entries: the usual case, as the received
        projection waits a little for the verdict (see the projector), and on SecantusDB
        an insert costs a fifth of an update.  Entries that exist already get one upsert
        each, filtered on "no verdict yet": it updates an entry waiting for its verdict,
        re-creates one deleted meanwhile, and fails with a duplicate key on an entry
        that has its verdict already (a redelivered log message), which is left as it
        is.  The server decides each case atomically, so no read is needed first and
        nothing is counted twice.  ``refused`` as for :meth:`record_received`.
        """
        if not docs:
            return set(), set()
        docs = [to_bson(d) for d in docs]
        mine: dict[str, str] = {}
        inserted = await self._insert_new(self.events, docs, mine)
        if mine and refused is None:
            raise BulkWriteError(
                {"writeErrors": [{"code": 2, "errmsg": next(iter(mine.values()))}]}
            )
        if refused is not None:
            refused.update(mine)
        rest = [d for d in docs if d["_id"] not in inserted and d["_id"] not in mine]
        if not rest:
            return inserted, inserted
        ops = []
        for d in rest:
            insert_only = {k: d[k] for k in RECEIVED_FIELDS if k in d}
            update = {k: v for k, v in d.items() if k not in insert_only and k != "_id"}
            ops.append(
                UpdateOne(
                    {"_id": d["_id"], "outcome_at": None},
                    {"$set": update, "$setOnInsert": insert_only},
                    upsert=True,
                )
            )
        try:
            result = await self.events.bulk_write(ops, ordered=False)
            created = set((result.upserted_ids or {}).keys())
            judged_before: set[int] = set()
        except BulkWriteError as exc:
            judged_before = _refusals(exc, rest, refused)
            created = {u["index"] for u in exc.details.get("upserted", [])}
        first = {d["_id"] for i, d in enumerate(rest) if i not in judged_before}
        return inserted | first, inserted | {rest[i]["_id"] for i in created}

    async def events_between(
        self,
        connector_id: str,
        *,
        low: datetime,
        high: datetime,
        high_inclusive: bool = False,
        terms: Sequence[search.Term] = (),
        newest_first: bool = True,
        limit: int = 0,
    ) -> list[Doc]:
        """Log entries (their summary fields and search terms) received in [low, high),
        or [low, high], having one of ``terms`` if given, in time order.

        Always a time window: a query that the database answers from an index with
        bounds on both the connector and the time (and the term), so its cost is the
        entries in the window, never the whole log (``services.config.log_search``
        chooses the windows).  One condition at most goes to the database; SecantusDB
        scans the collection for a query with more than its index covers.
        """
        query: Doc = {
            "connector_id": connector_id,
            "received_at": {"$gte": low, "$lte" if high_inclusive else "$lt": high},
        }
        if terms:
            query["terms"] = terms[0] if len(terms) == 1 else {"$in": list(terms)}
        order = DESCENDING if newest_first else ASCENDING
        cursor = self.events.find(query, dict.fromkeys(SUMMARY_FIELDS, 1))
        cursor = cursor.sort([("received_at", order), ("_id", order)])
        return await (cursor.limit(limit) if limit else cursor).to_list(None)

    async def get_event(self, connector_id: str, event_id: str) -> Doc | None:
        return _read(await self.events.find_one({"_id": event_id, "connector_id": connector_id}))

    # ------------------------------------------------------------ stats

    async def add_stats(self, increments: Mapping[str, Mapping[str, int]]) -> None:
        """One bulk write for a batch's counters: {connector_id: {field: n}}."""
        ops = [
            UpdateOne({"_id": cid}, {"$inc": dict(inc)}, upsert=True)
            for cid, inc in increments.items()
            if any(inc.values())
        ]
        if ops:
            await self.stats.bulk_write(ops, ordered=False)

    async def get_stats(self, connector_id: str) -> Doc:
        doc = await self.stats.find_one({"_id": connector_id}) or {}
        return {f: int(doc.get(f, 0)) for f in STAT_FIELDS} | {"since": doc.get("since")}

    async def reset_stats(self, connector_id: str, now: datetime) -> None:
        await self.stats.replace_one(
            {"_id": connector_id}, {**dict.fromkeys(STAT_FIELDS, 0), "since": now}, upsert=True
        )

    # ------------------------------------------------------------ bulk replays

    async def list_bulk_replays(self, connector_id: str, limit: int) -> list[Doc]:
        found = self.bulk_replays.find({"connector_id": connector_id})
        return await found.sort("created_at", DESCENDING).limit(limit).to_list(None)

    async def claim_bulk_replay(self, owner: str, now: datetime, lease_s: float) -> Doc | None:
        """A running job nobody holds (or whose holder's lease ran out), now ``owner``'s."""
        return await self.bulk_replays.find_one_and_update(
            {"state": "running", "lease_until": {"$lt": now}},
            {"$set": {"lease_owner": owner, "lease_until": now + timedelta(seconds=lease_s)}},
            return_document=ReturnDocument.AFTER,
        )

    async def advance_bulk_replay(
        self, job_id: str, owner: str, fields: Mapping[str, Any], *, running: bool = True
    ) -> bool:
        """Record a job's progress while ``owner`` still holds it (and, with ``running``,
        it was not cancelled); False when it was cancelled or taken over."""
        query: Doc = {"_id": job_id, "lease_owner": owner}
        if running:
            query["state"] = "running"
        result = await self.bulk_replays.update_one(query, {"$set": dict(fields)})
        return result.matched_count == 1

    async def cancel_bulk_replay(self, job_id: str, now: datetime) -> Doc | None:
        """Cancel a running job; the job as it is then (None: no such job).  A job no
        replica holds is finished at once; a held one when its holder notices (within
        a second), which then records its last count."""
        cancel = {"state": "cancelled", "cancelled_at": now}
        await self.bulk_replays.update_one(
            {"_id": job_id, "state": "running", "lease_until": {"$lt": now}},
            {"$set": cancel | {"finished_at": now}},
        )
        await self.bulk_replays.update_one({"_id": job_id, "state": "running"}, {"$set": cancel})
        return await self.bulk_replays.find_one({"_id": job_id})

    # ------------------------------------------------------------ alert windows

    async def count_alert_window(
        self,
        window_id: str,
        counts: Mapping[str, int],
        last: Mapping[str, Any],
        expire_at: datetime,
    ) -> Doc:
        """Add one verdict to a window's counts (atomically: replicas share it); the
        window after the change."""
        window: Doc | None = await self.alert_windows.find_one_and_update(
            {"_id": window_id},
            {"$inc": dict(counts), "$set": dict(last), "$setOnInsert": {"expire_at": expire_at}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert window is not None  # upserted
        return window

    async def claim_alert(self, window_id: str, reason: str, now: datetime) -> bool:
        """Whether this caller is the one to notify for the window (at most one is)."""
        result = await self.alert_windows.update_one(
            {"_id": window_id, "alerted": None}, {"$set": {"alerted": reason, "alerted_at": now}}
        )
        return result.modified_count == 1

    async def unclaim_alert(self, window_id: str) -> None:
        """The notification failed: the window's next verdict tries again."""
        await self.alert_windows.update_one({"_id": window_id}, {"$set": {"alerted": None}})

    # ------------------------------------------------------------ generic CRM rows

    async def insert(self, collection: str, doc: Doc) -> None:
        await self.db[collection].insert_one(doc)

    async def find(self, collection: str, query: Doc, limit: int = 100) -> list[Doc]:
        return await self.db[collection].find(query).limit(limit).to_list(None)

    async def find_one(self, collection: str, query: Doc) -> Doc | None:
        return await self.db[collection].find_one(query)

    async def delete(self, collection: str, query: Doc) -> int:
        return (await self.db[collection].delete_many(query)).deleted_count

    async def ids(self, collection: str, ids: Iterable[str]) -> set[str]:
        rows = await self.db[collection].find({"_id": {"$in": list(ids)}}, {"_id": 1}).to_list(None)
        return {r["_id"] for r in rows}
