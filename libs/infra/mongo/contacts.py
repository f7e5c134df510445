"""The contacts repository: the one place contacts are read and written (F6, F8).

The mapper writes a whole batch of events with :meth:`Contacts.apply` (an
``insert_many`` of the new numbers, ``$in`` finds of the contacts that exist, one
``bulk_write`` of those the batch changes);
the executor's update-contact and assign-owner actions use :meth:`Contacts.update_fields`
and :meth:`Contacts.set_owner`; the config API reads with :meth:`Contacts.find` and
:meth:`Contacts.get`.  Every Mongo call on the ``contacts`` collection lives here, in
:class:`MongoContactDocuments`, the MongoDB backend of the ``ContactDocuments`` port
(``libs.domain.ports``); :class:`Contacts` speaks only to the port, so its batching
runs unchanged over the in-memory backend of the unit tests.

A contact document::

    {_id, mobile?, email?, name?, time_zone?, owner?, channel?,
     attributes: {<subscriber attribute>: value}, created_at, updated_at}

* ``mobile`` is E.164 and carries a unique sparse index: two racing events for one
  new number create one contact.  A contact without a number has *no* ``mobile``
  field (a ``null`` would collide in the sparse index).
* ``email`` is stored lower-cased, so comparing lower-cased values is comparing
  case-insensitively.  Several contacts may share an email; the first added wins.
* A contact created from an email alone gets an id derived from the email, so two
  racing events for one new email also create one contact.
* Subscriber attributes are written with dotted ``$set`` keys, so an event only
  touches the attributes it maps.

What a contact may hold (the ``Plan``, the normalisers, the errors) is decided in
``libs.domain.contacts``; this module stores it.
"""

from __future__ import annotations

import asyncio
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bson.int64 import Int64
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from libs.domain import events
from libs.domain.contacts import (
    ATTRIBUTE_NAME,
    CONTACT_FIELDS,
    NO_IDENTITY,
    InvalidField,
    MobileTaken,
    Plan,
    email_contact_id,
    normalize_email,
    normalize_mobile,
)
from libs.domain.events import MappingResult, MappingStatus
from libs.domain.ports import (
    ALL,
    BulkOutcome,
    ContactDocuments,
    DuplicateKey,
    Find,
    Update,
    WriteFailure,
)
from libs.infra.mongo.codec import from_bson, to_bson
from libs.infra.mongo.store import Doc, Store

__all__ = ["KNOWN_NUMBERS", "Contacts", "MongoContactDocuments", "to_contact"]

KNOWN_NUMBERS = 100_000  # numbers a Contacts remembers as stored (about 10 MB)
_ABSENT = object()  # a field the contact does not have
_IN_CHUNK = 32  # values per $in query (see _find_in)
_EPOCH = datetime.min.replace(tzinfo=UTC)


# ---------------------------------------------------------------- views


def to_contact(doc: Mapping[str, Any], *, timestamps: bool = False) -> dict[str, Any]:
    """A contact as services see it: system fields, subscriber attributes, owner, channel."""
    out: dict[str, Any] = {
        "id": doc["_id"],
        "name": doc.get("name"),
        "email": doc.get("email"),
        "mobile": doc.get("mobile"),
        "time_zone": doc.get("time_zone"),
        "attributes": from_bson(dict(doc.get("attributes") or {})),
        "owner": doc.get("owner"),
        "channel": doc.get("channel"),
    }
    if timestamps:
        out["created_at"] = doc.get("created_at")
        out["updated_at"] = doc.get("updated_at")
    return out


# ---------------------------------------------------------------- the repository

_Kind = Literal["mobile", "email_known", "email_new", "email_batch"]


@dataclass
class _Op:
    """One planned write, and what became of it."""

    event_id: str
    kind: _Kind
    filter: Doc
    update: Doc
    errors: list[str]
    created: bool = False  # this op inserted the contact
    changed: bool = False  # this op wrote fields that differed
    after: Doc | None = None  # the contact as this op left it
    found: bool = False  # the contact existed before this op (per the batch's read)
    failed: str | None = None

    def key(self) -> str:
        """The contact's key in a batch's state: ``m:<mobile>`` or ``i:<id>``."""
        return (
            f"m:{self.filter['mobile']}" if "mobile" in self.filter else f"i:{self.filter['_id']}"
        )


class Contacts:
    """The repository over a ``Store`` (its ``contacts`` collection) or any backend of
    the ``ContactDocuments`` port."""

    def __init__(
        self,
        store: Store | ContactDocuments,
        *,
        new_id: Callable[[], str] = events.new_id,
        remember: int = KNOWN_NUMBERS,
    ) -> None:
        self.docs: ContactDocuments = (
            MongoContactDocuments(store.contacts) if isinstance(store, Store) else store
        )
        self._new_id = new_id
        # Numbers this process saw stored, least recently seen first: their events skip
        # the insert attempt and go straight to the read.  Only a routing hint, so it may
        # be stale: a number whose contact was deleted since is upserted after the read.
        self._known: dict[str, None] = {}
        self._remember = remember

    # ------------------------------------------------------------ the mapper's batch

    async def apply(
        self, plans: Sequence[tuple[str, Plan]], now: datetime
    ) -> dict[str, MappingResult]:
        """Create or update the contact of every plan; one result per event id.

        Round trips: a ``find`` of email matches (only if some plan lacks a mobile);
        one ``insert_many`` of the batch's numbers (the first event of each); finds of
        the other contacts the batch touches; one ``bulk_write`` of the changes, and one
        more only for upserts that lost a race.  A batch of new numbers is one call,
        and an event that brings its contact nothing new writes nothing (``unchanged``;
        on SecantusDB an update costs three inserts).

        The contact in a result is the one read plus this event's fields (and those of
        the batch's earlier events for it), not read back after the write: a write by
        another batch in between is in the database but not in this event's copy.
        """
        results: dict[str, MappingResult] = {}
        writable: list[tuple[str, Plan]] = []
        for event_id, plan in plans:
            if plan.skip_reason is not None or (plan.mobile is None and plan.email is None):
                results[event_id] = MappingResult(
                    status="error" if plan.errors else "skipped",
                    reason=plan.skip_reason or NO_IDENTITY,
                    errors=list(plan.errors),
                )
            else:
                writable.append((event_id, plan))
        if not writable:
            return results

        known = await self._first_by_email(
            {p.email for _, p in writable if p.mobile is None and p.email is not None}
        )
        ops = self._plan_ops(writable, known, now)
        state: dict[str, Doc] = {}  # contact key -> the contact as the batch left it so far
        rest = await self._insert_new(ops, state)
        state |= await self._read([op for op in rest if op.key() not in state])
        writes = [op for op in rest if _settle(op, state)]
        await self._write(writes)
        stale = [op for op in writes if op.failed is None and op.after is None]
        if stale:  # raced with another writer: read what it left
            docs = await self._read(stale)
            for op in stale:
                op.after = docs.get(op.key())
        for op in ops:
            results[op.event_id] = _result(op)
        return results

    async def _first_by_email(self, emails: set[str]) -> dict[str, str]:
        """email -> id of the first-added contact with it (created_at, then id)."""
        if not emails:
            return {}
        rows = await _find_in(
            self.docs, "email", sorted(emails), {"_id": 1, "email": 1, "created_at": 1}
        )
        rows.sort(key=lambda row: (row.get("created_at") or _EPOCH, row["_id"]))
        first: dict[str, str] = {}
        for row in rows:
            first.setdefault(row["email"], row["_id"])
        return first

    def _plan_ops(
        self, writable: list[tuple[str, Plan]], known: dict[str, str], now: datetime
    ) -> list[_Op]:
        ops: list[_Op] = []
        # Within one batch, an email-only event after an event that carried the same
        # email with a number goes to that number's contact, as if run one by one.
        mobile_of_email: dict[str, str] = {}
        for event_id, plan in writable:
            errors = list(plan.errors)
            fields = _fields(plan, now, errors)
            if plan.mobile is not None:
                if plan.email is not None:
                    fields["email"] = plan.email
                    mobile_of_email.setdefault(plan.email, plan.mobile)
                update: Doc = {
                    "$set": fields,
                    "$setOnInsert": {"_id": self._new_id(), "created_at": now},
                }
                ops.append(_Op(event_id, "mobile", {"mobile": plan.mobile}, update, errors))
                continue
            assert plan.email is not None
            email = plan.email
            if email in known:
                # Upsert by id: a contact deleted since the find is simply re-created.
                insert = {"email": email, "created_at": now}
                update = {"$set": fields, "$setOnInsert": insert}
                ops.append(_Op(event_id, "email_known", {"_id": known[email]}, update, errors))
            elif email in mobile_of_email:
                update = {"$set": fields}
                query = {"mobile": mobile_of_email[email]}
                ops.append(_Op(event_id, "email_batch", query, update, errors))
            else:
                update = {"$set": fields, "$setOnInsert": {"created_at": now}}
                query = {"_id": email_contact_id(email), "email": email}
                ops.append(_Op(event_id, "email_new", query, update, errors))
        return ops

    async def _write(self, ops: list[_Op]) -> None:
        """One unordered bulk write of the ops that change something; upserts that lost
        a race are retried as updates.  Sets ``after`` where the outcome is certain."""
        if not ops:
            return
        outcome = await self.docs.bulk_update([_request(op) for op in ops])
        retry: list[_Op] = []
        for index, op in enumerate(ops):
            err = outcome.failures.get(index)
            if err is not None:
                if err.duplicate and op.kind != "email_batch":
                    retry.append(op)  # lost an upsert race
                else:
                    op.failed = err.message
                op.after = None
            elif (index in outcome.upserted) != (not op.found):
                op.after = None  # created or deleted by another writer meanwhile
            elif index in outcome.upserted:
                op.created = True
        if not retry:
            return
        # The racing writer inserted the contact: now it matches, update it in place.
        again = [Update(op.filter, {"$set": op.update["$set"]}) for op in retry]
        for index, err in (await self.docs.bulk_update(again)).failures.items():
            retry[index].failed = err.message

    async def _insert_new(self, ops: list[_Op], state: dict[str, Doc]) -> list[_Op]:
        """Insert the first op of each number not known to be stored; return the ops left.

        No read first: a batch of new contacts, the costly case, is one call, and an
        insert that finds its number taken costs little (a third or less of one that
        succeeds, on SecantusDB).  Those become updates, before the batch's other ops
        (which stay in event order).
        """
        fresh: list[_Op] = []
        rest: list[_Op] = []
        seen: set[str] = set()
        for op in ops:
            mobile = op.filter.get("mobile") if op.kind == "mobile" else None
            if mobile is None or mobile in seen or mobile in self._known:
                rest.append(op)
            else:
                seen.add(mobile)  # later ops of this mobile in the batch update it
                fresh.append(op)
        if not fresh:
            return ops
        docs = [_document(op) for op in fresh]
        failed = set(await self.docs.insert_many(docs))
        for index, (op, doc) in enumerate(zip(fresh, docs, strict=True)):
            if index not in failed:
                op.created, op.changed, op.after = True, True, doc
                state[op.key()] = state[f"i:{doc['_id']}"] = doc
        self._learn(doc["mobile"] for doc in docs)
        return [op for i, op in enumerate(fresh) if i in failed] + rest

    def _learn(self, mobiles: Iterable[str]) -> None:
        """Remember numbers seen stored (most recent last), forgetting the oldest."""
        known = self._known
        for mobile in mobiles:
            known.pop(mobile, None)
            known[mobile] = None
        while len(known) > self._remember:
            del known[next(iter(known))]

    async def _read(self, ops: list[_Op]) -> dict[str, Doc]:
        """The contacts these ops touch as stored now, keyed by ``m:<mobile>`` and
        ``i:<id>``: ``$in`` finds by number and by id."""
        mobiles = sorted({op.filter["mobile"] for op in ops if "mobile" in op.filter})
        ids = sorted({op.filter["_id"] for op in ops if "_id" in op.filter})
        found: dict[str, Doc] = {}
        # The two reads side by side: one round trip's wait per batch, not two.
        by_mobile, by_id = await asyncio.gather(
            _find_in(self.docs, "mobile", mobiles), _find_in(self.docs, "_id", ids)
        )
        for doc in [*by_mobile, *by_id]:
            found[f"i:{doc['_id']}"] = doc
            if doc.get("mobile"):
                found[f"m:{doc['mobile']}"] = doc
        for mobile in mobiles:
            if f"m:{mobile}" not in found:
                self._known.pop(mobile, None)
        self._learn(doc["mobile"] for doc in by_mobile)
        return found

    # ------------------------------------------------------------ reads

    async def find(
        self, *, mobile: str | None = None, email: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Contacts with this (already normalised) mobile and/or email, first added first."""
        query: Doc = {}
        if mobile:
            query["mobile"] = mobile
        if email:
            query["email"] = email.strip().lower()
        if not query:
            raise ValueError("find contacts by mobile or email")
        first_added = Find(sort=[("created_at", 1), ("_id", 1)], limit=max(1, min(limit, 500)))
        rows = await self.docs.find(query, first_added)
        return [to_contact(r, timestamps=True) for r in rows]

    async def get(self, contact_id: str) -> dict[str, Any] | None:
        rows = await self.docs.find({"_id": contact_id}, Find(limit=1))
        return to_contact(rows[0], timestamps=True) if rows else None

    # ------------------------------------------------------------ the executor's actions

    async def update_fields(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        now: datetime | None = None,
        region: str = "US",
    ) -> dict[str, Any] | None:
        """Set system fields and subscriber attributes of one contact; None if unknown.

        Names: ``name``, ``email``, ``mobile``, ``time_zone``, ``owner``, ``channel``;
        any other name (or ``attributes.<name>`` / ``subscriber.<name>``) is a
        subscriber attribute.  A None or empty value removes the field.  Mobile
        numbers are normalised in ``region``; emails lower-cased.  Raises
        :class:`InvalidField` for a value that cannot be stored and
        :class:`MobileTaken` when the number belongs to another contact.
        """
        sets: Doc = {}
        unsets: Doc = {}
        for name, value in fields.items():
            key, stored = _field(name, value, region)
            if stored is None:
                unsets[key] = ""
            else:
                sets[key] = stored
        if now is not None:
            sets["updated_at"] = now
        update: Doc = {}
        if sets:
            update["$set"] = sets
        if unsets:
            update["$unset"] = unsets
        if not update:
            return await self.get(contact_id)
        # update_one + find_one: two fast round trips (find_one_and_update is the
        # slowest call on SecantusDB).
        try:
            matched = await self.docs.update_one({"_id": contact_id}, update)
        except DuplicateKey:
            raise MobileTaken(f"mobile {sets.get('mobile')} belongs to another contact") from None
        if not matched:
            return None
        return await self.get(contact_id)

    async def set_owner(
        self, contact_id: str, agent_email: str, *, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """Assign the contact owner (an agent's email, stored lower-cased); None if unknown."""
        if normalize_email(agent_email) is None:
            raise InvalidField(f"owner {agent_email!r} is not an email address")
        return await self.update_fields(contact_id, {"owner": agent_email}, now=now)


# ---------------------------------------------------------------- helpers


def _settle(op: _Op, state: dict[str, Doc]) -> bool:
    """Work out ``op`` against the batch's state of its contact; whether it must write.

    An op whose fields the contact holds already changes nothing and writes nothing.
    The state is advanced, so the batch's later events for a contact see this one.
    """
    key = op.key()
    before = state.get(key)
    if before is not None and "email" in op.filter and before.get("email") != op.filter["email"]:
        # the email-derived id is taken by a contact whose email was changed since
        op.failed = "no contact matched"
        return False
    if before is None:
        if op.kind == "email_batch":  # its number's contact was not written
            op.failed = "no contact matched"
            return False
        after = _document(op)  # what the upsert creates
    else:
        op.found = True
        sets = {k: v for k, v in op.update["$set"].items() if k != "updated_at"}
        if all(_same(_get(before, k), v) for k, v in sets.items()):
            op.after = before
            return False
        after = _with(before, op.update["$set"])
    op.changed, op.after = True, after
    state[key] = state[f"i:{after['_id']}"] = after
    if after.get("mobile"):
        state[f"m:{after['mobile']}"] = after
    return True


def _request(op: _Op) -> Update:
    """The write of an op that changes its contact.  A contact the batch read is updated
    by ``_id`` (15-25% cheaper on SecantusDB than by number) and re-created should it
    have been deleted since the read; others are upserted by the op's own filter."""
    if op.after is None or not op.found:
        return Update(op.filter, op.update, upsert=op.kind != "email_batch")
    identity = {**op.update.get("$setOnInsert", {}), **op.filter}
    identity.pop("_id", None)
    update = {"$set": op.update["$set"], "$setOnInsert": identity}
    return Update({"_id": op.after["_id"]}, update, upsert=op.kind != "email_batch")


def _result(op: _Op) -> MappingResult:
    if op.failed is not None:
        return MappingResult(
            status="error", reason=f"contact not written: {op.failed}", errors=op.errors
        )
    doc = op.after
    if doc is None:
        return MappingResult(
            status="error", reason="contact not written: no contact matched", errors=op.errors
        )
    status: MappingStatus
    if op.kind == "mobile":
        status = "created" if op.created else "updated" if op.changed else "unchanged"
    elif op.kind == "email_new" and op.created:
        status = "created"
    else:
        status = "matched_email"
    return MappingResult(
        status=status, contact_id=doc["_id"], contact=to_contact(doc), errors=op.errors
    )


def _get(doc: Doc, key: str) -> Any:
    """The value at a ``$set`` key (``attributes.city``); a sentinel when absent."""
    head, _, tail = key.partition(".")
    value = doc.get(head, _ABSENT)
    if tail:
        return value.get(tail, _ABSENT) if isinstance(value, dict) else _ABSENT
    return value


def _with(doc: Doc, sets: Doc) -> Doc:
    """``doc`` after a ``$set`` of ``sets`` (dotted keys one level deep, as written here)."""
    out = dict(doc)
    for key, value in sets.items():
        head, _, tail = key.partition(".")
        if tail:
            sub = out.get(head)
            out[head] = {**(sub if isinstance(sub, dict) else {}), tail: value}
        else:
            out[key] = value
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``1``, ``1.0`` and ``True`` differ
    as stored values).  A stored integer beyond 32 bits comes back as ``bson.Int64``: it
    is the same number as the plan's ``int``, not a change."""
    a, b = (int(x) if type(x) is Int64 else x for x in (a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _fields(plan: Plan, now: datetime, errors: list[str]) -> Doc:
    """The ``$set`` of a plan: mapped system fields and dotted subscriber attributes."""
    fields: Doc = {"updated_at": now}
    if plan.name is not None:
        fields["name"] = plan.name
    if plan.channel is not None:
        fields["channel"] = plan.channel
    if plan.owner is not None:
        fields["owner"] = plan.owner
    for name, value in plan.attributes.items():
        if ATTRIBUTE_NAME.match(name):
            fields[f"attributes.{name}"] = to_bson(value)
        else:
            errors.append(f"attribute name {name!r} is not valid; not stored")
    return fields


def _field(name: str, value: Any, region: str) -> tuple[str, Any]:
    """(Mongo key, stored value or None to remove) for one ``update_fields`` entry."""
    if isinstance(value, str):
        value = value.strip()
    empty = value is None or value == ""
    if name in CONTACT_FIELDS:
        if empty:
            return name, None
        stored: Any
        if name == "mobile":
            stored = normalize_mobile(value, region)
            if stored is None:
                raise InvalidField(f"mobile {str(value)[:64]!r} is not a valid phone number")
        elif name in ("email", "owner"):
            stored = normalize_email(value)
            if stored is None:
                raise InvalidField(f"{name} {str(value)[:64]!r} is not an email address")
        elif name == "time_zone":
            stored = _time_zone(value)
        else:
            stored = str(value)
        return name, stored
    attribute = name
    for prefix in ("attributes.", "subscriber."):
        if name.startswith(prefix):
            attribute = name[len(prefix) :]
    if not ATTRIBUTE_NAME.match(attribute):
        raise InvalidField(f"{name!r} is neither a contact field nor a subscriber attribute name")
    return f"attributes.{attribute}", None if empty else to_bson(value)


def _time_zone(value: Any) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidField(f"time zone {str(value)[:64]!r} is not an IANA zone name") from None
    return str(value)


def _document(op: _Op) -> Doc:
    """The contact an upsert would create, as a document (dotted keys nested)."""
    doc: Doc = {**op.update.get("$setOnInsert", {}), **op.filter}
    for key, value in op.update["$set"].items():
        head, _, tail = key.partition(".")
        if tail:
            doc.setdefault(head, {})[tail] = value
        else:
            doc[key] = value
    return doc


async def _find_in(
    docs: ContactDocuments, field: str, values: list[Any], projection: Doc | None = None
) -> list[Doc]:
    """Documents whose ``field`` is one of ``values``: ``$in`` finds of ``_IN_CHUNK`` values
    each, run side by side.  SecantusDB checks each found document against the whole
    ``$in`` list, one value after another, so one find of n values costs n² comparisons
    (256 mobiles: 82 ms of server CPU, against 34 ms for eight finds of 32)."""
    chunks = [values[i : i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]
    found = await asyncio.gather(
        *(docs.find({field: {"$in": chunk}}, Find(projection)) for chunk in chunks)
    )
    return [doc for batch in found for doc in batch]


# ---------------------------------------------------------------- the MongoDB backend


class MongoContactDocuments:
    """The ``ContactDocuments`` port over a PyMongo collection: one call a method."""

    def __init__(self, col: AsyncCollection[Doc]) -> None:
        self.col = col

    async def insert_many(self, docs: Sequence[Doc]) -> dict[int, WriteFailure]:
        try:
            await self.col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            return _failures(exc.details)
        return {}

    async def find(self, query: Doc, how: Find = ALL) -> list[Doc]:
        cursor = self.col.find(query, how.projection)
        if how.sort:
            cursor = cursor.sort(list(how.sort))
        return await cursor.limit(how.limit).to_list(None)

    async def bulk_update(self, updates: Sequence[Update]) -> BulkOutcome:
        requests = [UpdateOne(u.filter, u.update, upsert=u.upsert) for u in updates]
        try:
            result = await self.col.bulk_write(requests, ordered=False)
        except BulkWriteError as exc:
            details = exc.details
            upserted = {int(u["index"]) for u in details.get("upserted", [])}
            return BulkOutcome(upserted, _failures(details))
        return BulkOutcome({int(i) for i in result.upserted_ids or {}})

    async def update_one(self, query: Doc, update: Doc) -> bool:
        try:
            result = await self.col.update_one(query, update)
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None
        return result.matched_count > 0


def _failures(details: Mapping[str, Any]) -> dict[int, WriteFailure]:
    """The write errors of a bulk write's reply, by index."""
    return {
        int(e["index"]): WriteFailure(int(e.get("code") or 0), str(e.get("errmsg") or e))
        for e in details.get("writeErrors", [])
    }
