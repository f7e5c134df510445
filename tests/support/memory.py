"""In-memory backends of the core's ports (``libs.domain.ports``) and of a delivered
message, so the mapper's and the projector's batching, counting and drift logic runs in
unit tests without servers.  Not mocks: each is a small real implementation, and
``tests/integration/test_port_contracts.py`` runs the same contract against it and
against the MongoDB adapters on SecantusDB.

What they keep of MongoDB, because the core relies on it:

* documents go through BSON on the way in (``bson.encode``): what the driver cannot
  encode fails the whole call, a document over 16 MiB is a write error of its own, and
  what is read back has BSON's types (``Int64`` beyond 32 bits, datetimes in UTC to the
  millisecond);
* ``_id`` is unique, and so are a collection's ``unique`` fields where present (sparse);
  a refused write is error 11000, and unordered bulk writes try every document;
* upserts insert the filter's equalities with ``$setOnInsert`` and ``$set``;
* every method is one round trip, named as MongoDB names its command (``insert``,
  ``find``, ``update``) in ``calls``, and yields to the event loop first, so two
  writers started together interleave between round trips (never inside one);
* ``offline`` makes every call fail as the database being away does
  (``pymongo.errors.ConnectionFailure``, one of ``Store.UNREACHABLE``).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import bson
from bson.codec_options import CodecOptions
from pymongo.errors import BulkWriteError, ConnectionFailure, WriteError

from libs.domain.ports import (
    ALL,
    DUPLICATE_KEY,
    BulkOutcome,
    DuplicateKey,
    Find,
    Update,
    WriteFailure,
)
from libs.infra.mongo.codec import from_bson, to_bson
from libs.infra.mongo.store import RECEIVED_FIELDS, STAT_FIELDS

Doc = dict[str, Any]
MAX_BSON_BYTES = 16 * 1024 * 1024
_CODEC: CodecOptions[Doc] = CodecOptions(tz_aware=True)
_MISSING = object()
_TOO_LARGE = 2  # the code a write error of a document over the limit carries


class MemoryCollection:
    """One collection: the ``ContactDocuments`` port, and the primitives the in-memory
    store builds its methods on."""

    def __init__(self, name: str, *, unique: Iterable[str] = ()) -> None:
        self.name = name
        self.unique = tuple(unique)
        self.calls: list[str] = []  # the round trips, by MongoDB command name
        self.offline = False
        self._docs: dict[Any, Doc] = {}  # by _id, in insertion order

    # ------------------------------------------------------------ round trips

    async def round_trip(self, command: str) -> None:
        self.calls.append(command)
        await asyncio.sleep(0)  # another writer may go first, as over a socket
        if self.offline:
            raise ConnectionFailure(f"memory backend {self.name!r} is offline")

    async def insert_many(self, docs: Sequence[Doc]) -> dict[int, WriteFailure]:
        await self.round_trip("insert")
        encoded = [_encode(doc) for doc in docs]  # the driver encodes the whole call first
        failures = {}
        for index, data in enumerate(encoded):
            failure = self.insert(data)
            if failure is not None:
                failures[index] = failure
        return failures

    async def find(self, query: Doc, how: Find = ALL) -> list[Doc]:
        await self.round_trip("find")
        return self.select(query, how)

    async def bulk_update(self, updates: Sequence[Update]) -> BulkOutcome:
        await self.round_trip("update")
        for u in updates:
            _encode(u.update)
        outcome = BulkOutcome()
        for index, u in enumerate(updates):
            upserted, failure = self.update(u)
            if failure is not None:
                outcome.failures[index] = failure
            elif upserted:
                outcome.upserted.add(index)
        return outcome

    async def update_one(self, query: Doc, update: Doc) -> bool:
        await self.round_trip("update")
        matched = self.select(query, Find(limit=1))
        _, failure = self.update(Update(query, update))
        if failure is not None:
            if failure.duplicate:
                raise DuplicateKey(failure.message)
            raise WriteError(failure.message, failure.code)
        return bool(matched)

    # ------------------------------------------------------------ primitives

    def insert(self, doc: Doc | bytes) -> WriteFailure | None:
        """Store one document (encoded or not); the failure, if refused."""
        data = doc if isinstance(doc, bytes) else _encode(doc)
        if len(data) > MAX_BSON_BYTES:
            return WriteFailure(_TOO_LARGE, f"BSON document too large ({len(data)} bytes)")
        stored = bson.decode(data, _CODEC)
        stored.setdefault("_id", bson.ObjectId())
        failure = self._duplicate(stored, None)
        if failure is None:
            self._docs[stored["_id"]] = stored
        return failure

    def select(self, query: Doc, how: Find = ALL) -> list[Doc]:
        rows = [doc for doc in self._docs.values() if matches(doc, query)]
        for key, direction in reversed(how.sort):  # stable: the last key first
            rows.sort(key=_sort_key(key), reverse=direction < 0)
        if how.limit:
            rows = rows[: how.limit]
        return [_project(doc, how.projection) for doc in rows]

    def update(self, u: Update) -> tuple[bool, WriteFailure | None]:
        """Apply one update to the first match, or upsert; (upserted, failure)."""
        found = next((doc for doc in self._docs.values() if matches(doc, u.filter)), None)
        if found is None:
            if not u.upsert:
                return False, None
            new: Doc = {}
            for key, value in u.filter.items():
                if not key.startswith("$") and not _is_operator(value):
                    _set(new, key, value)
            return True, self.insert(_updated(new, u.update, inserting=True))
        after = _updated(found, u.update, inserting=False)
        if after.get("_id") != found["_id"]:
            return False, WriteFailure(66, "Performing an update on the path '_id' is immutable")
        data = _encode(after)
        if len(data) > MAX_BSON_BYTES:
            return False, WriteFailure(_TOO_LARGE, f"BSON document too large ({len(data)} bytes)")
        stored = bson.decode(data, _CODEC)
        failure = self._duplicate(stored, found["_id"])
        if failure is None:
            self._docs[found["_id"]] = stored
        return False, failure

    def delete(self, query: Doc) -> int:
        gone = [key for key, doc in self._docs.items() if matches(doc, query)]
        for key in gone:
            del self._docs[key]
        return len(gone)

    def __len__(self) -> int:
        return len(self._docs)

    def _duplicate(self, doc: Doc, own_id: Any) -> WriteFailure | None:
        if own_id is None and doc["_id"] in self._docs:
            return _duplicate_key(self.name, "_id", doc["_id"])
        for name in self.unique:
            value = _get(doc, name)
            if value is _MISSING:
                continue  # sparse: a document without the field is not in the index
            for other in self._docs.values():
                if other["_id"] != own_id and _equal(_get(other, name), value):
                    return _duplicate_key(self.name, name, value)
        return None


class MemoryStore:
    """The ``Store`` methods the mapper's and the projector's cores call (and the reads
    their tests make), over in-memory collections."""

    def __init__(self) -> None:
        self.contacts = MemoryCollection("contacts", unique=("mobile",))
        self.events = MemoryCollection("events")
        self.stats = MemoryCollection("stats")
        self.structures = MemoryCollection("structures")
        self._rows: dict[str, MemoryCollection] = {}

    def collection(self, name: str) -> MemoryCollection:
        if name not in self._rows:
            self._rows[name] = MemoryCollection(name)
        return self._rows[name]

    @property
    def offline(self) -> bool:
        return self.events.offline

    @offline.setter
    def offline(self, value: bool) -> None:
        for col in (self.contacts, self.events, self.stats, self.structures, *self._rows.values()):
            col.offline = value

    # ------------------------------------------------------------ structures

    async def get_structure(self, connector_id: str) -> Doc | None:
        await self.structures.round_trip("find")
        rows = self.structures.select({"_id": connector_id})
        return from_bson(rows[0]) if rows else None  # type: ignore[no-any-return]

    async def insert_structure_if_absent(self, connector_id: str, doc: Doc) -> bool:
        await self.structures.round_trip("insert")
        failure = self.structures.insert(to_bson({"_id": connector_id, **doc}))
        if failure is not None and not failure.duplicate:
            raise WriteError(failure.message, failure.code)
        return failure is None

    # ------------------------------------------------------------ CRM rows

    async def insert(self, collection: str, doc: Doc) -> None:
        col = self.collection(collection)
        await col.round_trip("insert")
        failure = col.insert(doc)
        if failure is not None:
            raise WriteError(failure.message, failure.code)

    async def find(self, collection: str, query: Doc, limit: int = 100) -> list[Doc]:
        col = self.collection(collection)
        await col.round_trip("find")
        return col.select(query, Find(limit=limit))

    # ------------------------------------------------------------ event log

    async def record_received(
        self, docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> set[str]:
        """Each entry inserted unless one with its id exists (then left as it is)."""
        await self.events.round_trip("insert")
        encoded = [_encode(to_bson(d)) for d in docs]
        new: set[str] = set()
        errors: list[tuple[int, WriteFailure]] = []
        for index, (doc, data) in enumerate(zip(docs, encoded, strict=True)):
            failure = self.events.insert(data)
            if failure is None:
                new.add(doc["_id"])
            elif not failure.duplicate:
                errors.append((index, failure))
        _refuse(docs, errors, refused)
        return new

    async def record_outcomes(
        self, docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> tuple[set[str], set[str]]:
        """A verdict creates its entry whole, or completes one waiting for its verdict
        (the received fields stay as they are), or changes nothing: the entry has one."""
        await self.events.round_trip("insert")
        entries = [to_bson(d) for d in docs]
        encoded = [_encode(d) for d in entries]
        first: set[str] = set()
        created: set[str] = set()
        errors: list[tuple[int, WriteFailure]] = []
        for index, (doc, data) in enumerate(zip(entries, encoded, strict=True)):
            failure = self.events.insert(data)
            if failure is None:
                first.add(doc["_id"])
                created.add(doc["_id"])
                continue
            if failure.duplicate:
                sets = {k: v for k, v in doc.items() if k not in RECEIVED_FIELDS and k != "_id"}
                waiting = Update({"_id": doc["_id"], "outcome_at": None}, {"$set": sets})
                matched = self.events.select(waiting.filter, Find(limit=1))
                _, failure = self.events.update(waiting)
                if failure is None and matched:
                    first.add(doc["_id"])
            if failure is not None:
                errors.append((index, failure))
        _refuse(docs, errors, refused)
        return first, created

    async def get_event(self, connector_id: str, event_id: str) -> Doc | None:
        await self.events.round_trip("find")
        rows = self.events.select({"_id": event_id, "connector_id": connector_id})
        return from_bson(rows[0]) if rows else None  # type: ignore[no-any-return]

    # ------------------------------------------------------------ stats

    async def add_stats(self, increments: Mapping[str, Mapping[str, int]]) -> None:
        updates = [
            Update({"_id": cid}, {"$inc": dict(inc)}, upsert=True)
            for cid, inc in increments.items()
            if any(inc.values())
        ]
        if updates:
            await self.stats.bulk_update(updates)

    async def get_stats(self, connector_id: str) -> Doc:
        await self.stats.round_trip("find")
        rows = self.stats.select({"_id": connector_id})
        doc = rows[0] if rows else {}
        return {f: int(doc.get(f, 0)) for f in STAT_FIELDS} | {"since": doc.get("since")}


@dataclass
class MemoryMsg:
    """A delivered JetStream message as the handlers see it (``projector.Delivery``):
    its payload, how often it was delivered, and how it was settled, in order."""

    data: bytes
    subject: str = "hookline.events.received.c1"
    delivered: int = 1
    settled: list[str] = field(default_factory=list)  # "ack", "nak", "term"
    delays: list[float | None] = field(default_factory=list)  # of each nak
    stored_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    stored: bytes = b""  # what the stream keeps (``data`` may be emptied by a handler)

    def __post_init__(self) -> None:
        self.stored = self.stored or self.data

    @dataclass(frozen=True)
    class Metadata:
        num_delivered: int
        timestamp: datetime  # when the stream stored it

    @property
    def metadata(self) -> MemoryMsg.Metadata:
        return MemoryMsg.Metadata(self.delivered, self.stored_at)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append("nak")
        self.delays.append(delay)

    async def term(self) -> None:
        self.settled.append("term")

    def redelivered(self) -> MemoryMsg:
        """The same message delivered once more."""
        return MemoryMsg(self.stored, self.subject, self.delivered + 1, stored_at=self.stored_at)


# ---------------------------------------------------------------- matching and updating


def matches(doc: Doc, query: Doc) -> bool:
    """Whether ``doc`` matches ``query``: equalities on (dotted) fields (None matches a
    missing field too), ``$in``, ``$ne``, ``$lt``/``$lte``/``$gt``/``$gte``."""
    for key, condition in query.items():
        value = _get(doc, key)
        if not _is_operator(condition):
            if not _equal(value, condition):
                return False
            continue
        for op, arg in condition.items():
            if op == "$in":
                ok = any(_equal(value, a) for a in arg)
            elif op == "$ne":
                ok = not _equal(value, arg)
            elif op in _COMPARE:
                ok = value is not _MISSING and _comparable(value, arg)
                ok = ok and _COMPARE[op](_order(value), _order(arg))
            else:
                raise NotImplementedError(f"query operator {op}")
            if not ok:
                return False
    return True


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
}


def _updated(doc: Doc, update: Doc, *, inserting: bool) -> Doc:
    out = copy.deepcopy(doc)
    for op, fields in update.items():
        for key, value in fields.items():
            if op == "$set" or (op == "$setOnInsert" and inserting):
                _set(out, key, copy.deepcopy(value))
            elif op == "$unset":
                _unset(out, key)
            elif op == "$inc":
                current = _get(out, key)
                _set(out, key, value if current is _MISSING else current + value)
            elif op != "$setOnInsert":
                raise NotImplementedError(f"update operator {op}")
    return out


def _refuse(
    docs: Sequence[Doc], errors: list[tuple[int, WriteFailure]], refused: dict[str, str] | None
) -> None:
    """As the store does with a bulk write's errors other than duplicates: raise them,
    or with ``refused`` note them by entry id."""
    if errors and refused is None:
        raise BulkWriteError(
            {"writeErrors": [{"index": i, "code": f.code, "errmsg": f.message} for i, f in errors]}
        )
    for index, failure in errors:
        refused[docs[index]["_id"]] = failure.message[:300]  # type: ignore[index]


def _encode(doc: Doc) -> bytes:
    return bson.encode(doc)


def _duplicate_key(collection: str, name: str, value: Any) -> WriteFailure:
    return WriteFailure(
        DUPLICATE_KEY,
        f"E11000 duplicate key error collection: {collection} index: {name}_1 "
        f"dup key: {{ {name}: {value!r} }}",
    )


def _is_operator(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def _set(doc: Doc, dotted: str, value: Any) -> None:
    *heads, last = dotted.split(".")
    for part in heads:
        if not isinstance(doc.get(part), dict):
            doc[part] = {}
        doc = doc[part]
    doc[last] = value


def _unset(doc: Doc, dotted: str) -> None:
    *heads, last = dotted.split(".")
    for part in heads:
        doc = doc.get(part)  # type: ignore[assignment]
        if not isinstance(doc, dict):
            return
    doc.pop(last, None)


def _equal(value: Any, wanted: Any) -> bool:
    """BSON equality: None matches null and missing; a boolean is not a number."""
    if wanted is None:
        return value is None or value is _MISSING
    if value is _MISSING or isinstance(value, bool) != isinstance(wanted, bool):
        return False
    return bool(value == wanted)


def _comparable(a: Any, b: Any) -> bool:
    return _order(a)[0] == _order(b)[0]


def _order(value: Any) -> tuple[int, Any]:
    """MongoDB's sort order across types: missing and null, numbers, strings, objects,
    ..., booleans, dates."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (8, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, datetime):
        return (9, value)
    return (5, repr(value))


def _sort_key(dotted: str) -> Callable[[Doc], tuple[int, Any]]:
    return lambda doc: _order(_get(doc, dotted))


def _project(doc: Doc, projection: Doc | None) -> Doc:
    if not projection:
        return copy.deepcopy(doc)
    keep = {k for k, v in projection.items() if v}
    if keep - {"_id"}:
        out = {k: v for k, v in doc.items() if k in keep or (k == "_id" and "_id" in keep)}
        if projection.get("_id", 1):
            out["_id"] = doc["_id"]
    else:
        out = {k: v for k, v in doc.items() if k not in projection}
    return copy.deepcopy(out)


if TYPE_CHECKING:  # mypy checks that each backend conforms to its port
    from libs.domain import ports

    _contacts: ports.ContactDocuments = MemoryCollection("contacts")
    _mapper_store: ports.MapperStore = MemoryStore()
    _projection_store: ports.ProjectionStore = MemoryStore()
