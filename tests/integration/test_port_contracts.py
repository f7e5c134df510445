"""The ports' contract (``libs.domain.ports``), run against both backends: the in-memory
one the unit tests use (``tests.support.memory``) and the MongoDB adapters on a real
SecantusDB.  What the core's batching and counting rely on is checked here once, so the
unit tests of the mapper and the projector over memory say what they would say over
MongoDB: unique indexes and duplicate keys, upserts, counters, what comes back, and the
round trips the contacts repository makes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson.int64 import Int64
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from libs.domain.contacts import Plan
from libs.domain.ports import ContactDocuments, DuplicateKey, Find, Update
from libs.domain.values import INT64_MAX, INT64_MIN
from libs.infra.mongo import store as hmongo
from libs.infra.mongo.contacts import Contacts, MongoContactDocuments
from libs.infra.settings import Settings
from tests.integration.test_contacts import Commands
from tests.integration.test_event_log import T0, received
from tests.support.memory import MemoryStore


@dataclass
class Backend:
    name: str
    store: Any  # hmongo.Store or MemoryStore: the ports' methods and the tests' reads
    documents: ContactDocuments
    calls: list[str]  # the commands sent to the contacts collection, in order
    delete_contacts: Callable[[], Any]

    def contacts(self, **kwargs: Any) -> Contacts:
        """A repository as a new process has it (it remembers no number)."""
        return Contacts(self.documents, **kwargs)

    async def count(self, query: dict[str, Any]) -> int:
        return len(await self.documents.find(query, Find({"_id": 1})))


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = MemoryStore()

        async def forget() -> None:
            memory.contacts.delete({})

        yield Backend("memory", memory, memory.contacts, memory.contacts.calls, forget)
        return
    settings: Settings = request.getfixturevalue("settings")
    listener = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_uri, tz_aware=True, event_listeners=[listener]
    )
    store = hmongo.Store(client, settings.mongo_db)
    await store.ensure_indexes()
    listener.names.clear()

    async def delete() -> None:
        await store.contacts.delete_many({})

    try:
        yield Backend("mongo", store, MongoContactDocuments(store.contacts), listener.names, delete)
    finally:
        await client.close()


# ---------------------------------------------------------------- ContactDocuments


async def test_insert_many_is_unordered_and_refuses_duplicate_ids_and_numbers(
    backend: Backend,
) -> None:
    docs = backend.documents
    assert await docs.insert_many([{"_id": "a", "mobile": "+1"}, {"_id": "b"}]) == {}
    failures = await docs.insert_many(
        [
            {"_id": "a", "mobile": "+2"},  # the id is taken
            {"_id": "c", "mobile": "+1"},  # the number is taken
            {"_id": "d"},  # no number: the sparse index holds any count of these
            {"_id": "e", "mobile": "+3"},
        ]
    )
    assert sorted(failures) == [0, 1]
    assert all(f.duplicate for f in failures.values())
    ids = [d["_id"] for d in await docs.find({}, Find(sort=[("_id", 1)]))]
    assert ids == ["a", "b", "d", "e"]


async def test_find_equalities_in_projection_sort_limit_and_what_comes_back(
    backend: Backend,
) -> None:
    docs = backend.documents
    at = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)
    await docs.insert_many(
        [
            {"_id": "x2", "email": "s@x.io", "created_at": at, "n": 2**40, "attributes": {"k": 1}},
            {"_id": "x1", "email": "s@x.io", "created_at": at, "n": 7},
            {"_id": "y", "email": "o@x.io", "created_at": at - timedelta(days=1), "n": 1.0},
        ]
    )
    rows = await docs.find({"email": "s@x.io"}, Find(sort=[("created_at", 1), ("_id", 1)]))
    assert [r["_id"] for r in rows] == ["x1", "x2"]
    # BSON's types: milliseconds, UTC; a 64-bit integer as Int64 (which a contact's
    # "unchanged" check tells from an int), a float stays a float.
    assert rows[0]["created_at"] == at.replace(microsecond=123000)
    assert rows[0]["created_at"].utcoffset() == timedelta(0)
    assert (type(rows[0]["n"]), type(rows[1]["n"])) == (int, Int64)
    by_in = await docs.find({"_id": {"$in": ["y", "x2", "nope"]}}, Find({"_id": 1, "email": 1}))
    assert sorted((r["_id"], r["email"], len(r)) for r in by_in) == [
        ("x2", "s@x.io", 2),
        ("y", "o@x.io", 2),
    ]
    assert (await docs.find({"attributes.k": 1}))[0]["_id"] == "x2"
    assert type((await docs.find({"_id": "y"}))[0]["n"]) is float
    newest = await docs.find({}, Find(sort=[("created_at", -1), ("_id", -1)], limit=2))
    assert [r["_id"] for r in newest] == ["x2", "x1"]
    assert await docs.find({"email": "nobody@x.io"}) == []


async def test_bulk_update_upserts_updates_and_reports_each_failure(backend: Backend) -> None:
    docs = backend.documents
    await docs.insert_many([{"_id": "a", "mobile": "+1", "attributes": {"k": 1, "j": 2}}])
    outcome = await docs.bulk_update(
        [
            Update({"mobile": "+1"}, {"$set": {"attributes.k": 9, "name": "A"}}, upsert=True),
            Update(
                {"mobile": "+2"},
                {"$set": {"name": "B"}, "$setOnInsert": {"_id": "b", "created_at": T0}},
                upsert=True,
            ),
            Update({"_id": "c"}, {"$set": {"mobile": "+1"}}, upsert=True),  # number taken
            Update({"_id": "none"}, {"$set": {"name": "N"}}),  # no match, no upsert
            Update({"_id": "d", "email": "d@x.io"}, {"$set": {"name": "D"}}, upsert=True),
        ]
    )
    assert outcome.upserted == {1, 4}
    assert list(outcome.failures) == [2]
    assert outcome.failures[2].duplicate
    rows = {r["_id"]: r for r in await docs.find({})}
    assert sorted(rows) == ["a", "b", "d"]
    assert (rows["a"]["attributes"], rows["a"]["name"]) == ({"k": 9, "j": 2}, "A")
    assert rows["b"] == {"_id": "b", "mobile": "+2", "name": "B", "created_at": T0}
    assert rows["d"] == {"_id": "d", "email": "d@x.io", "name": "D"}


async def test_update_one_matches_unsets_and_refuses_a_taken_number(backend: Backend) -> None:
    docs = backend.documents
    await docs.insert_many(
        [{"_id": "a", "mobile": "+1", "attributes": {"k": 1, "j": 2}}, {"_id": "b", "mobile": "+2"}]
    )
    assert await docs.update_one({"_id": "a"}, {"$unset": {"attributes.k": ""}}) is True
    assert await docs.update_one({"_id": "zz"}, {"$set": {"name": "x"}}) is False
    with pytest.raises(DuplicateKey):
        await docs.update_one({"_id": "a"}, {"$set": {"mobile": "+2"}})
    assert await docs.find({"_id": "a"}) == [{"_id": "a", "mobile": "+1", "attributes": {"j": 2}}]


# ---------------------------------------------------------------- the contacts repository


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_a_batch_of_new_numbers_is_one_insert_then_known_ones_read_and_written(
    backend: Backend,
) -> None:
    """The round trips of ``Contacts.apply`` are the same commands over both backends."""
    contacts = backend.contacts()
    created = await contacts.apply(
        [(f"n{i}", Plan(mobile=f"+1415555{i:04d}", name=f"N{i}")) for i in range(40)], at(0)
    )
    assert backend.calls == ["insert"]
    assert {r.status for r in created.values()} == {"created"}

    def again(tag: str) -> list[tuple[str, Plan]]:
        return [
            (f"{tag}{i}", Plan(mobile=f"+1415555{i:04d}", attributes={"v": i} if i < 20 else {}))
            for i in range(40)
        ]

    backend.calls.clear()
    second = await contacts.apply([*again("a"), ("new", Plan(mobile="+14155559999"))], at(1))
    assert backend.calls == ["insert", "find", "find", "update"]  # $in finds of 32
    assert second["new"].status == "created"
    assert [second[f"a{i}"].status for i in (0, 19, 20, 39)] == [
        "updated",
        "updated",
        "unchanged",
        "unchanged",
    ]
    backend.calls.clear()
    third = await contacts.apply(again("b"), at(2))
    assert backend.calls == ["find", "find"]  # it remembers the numbers are stored
    assert {r.status for r in third.values()} == {"unchanged"}
    backend.calls.clear()
    cold = await backend.contacts().apply(again("c"), at(2))
    assert backend.calls == ["insert", "find", "find"]
    assert {r.status for r in cold.values()} == {"unchanged"}
    assert await backend.count({}) == 41


async def test_statuses_over_email_matches_skips_and_a_taken_email_id(backend: Backend) -> None:
    contacts = backend.contacts()
    first = await contacts.apply(
        [
            ("older", Plan(mobile="+14155550100", email="shared@x.io", name="Older")),
            ("skip", Plan(skip_reason="nothing")),
            ("new-email", Plan(email="new@x.io", name="A")),
            ("new-email-again", Plan(email="new@x.io", name="B")),
        ],
        at(0),
    )
    assert [first[k].status for k in ("older", "skip", "new-email", "new-email-again")] == [
        "created",
        "skipped",
        "created",
        "matched_email",
    ]
    await contacts.apply([("newer", Plan(mobile="+14155550101", email="shared@x.io"))], at(5))
    matched = await contacts.apply([("e", Plan(email="shared@x.io", name="Z"))], at(10))
    assert matched["e"].status == "matched_email"
    assert matched["e"].contact_id == first["older"].contact_id
    contact_id = first["new-email"].contact_id
    assert contact_id is not None
    await contacts.update_fields(contact_id, {"email": "changed@x.io"})
    collided = await contacts.apply([("b", Plan(email="new@x.io"))], at(11))
    assert (collided["b"].status, collided["b"].reason) == (
        "error",
        "contact not written: no contact matched",
    )
    found = await contacts.find(email="shared@x.io")
    assert [(c["name"], c["mobile"]) for c in found] == [
        ("Z", "+14155550100"),
        (None, "+14155550101"),
    ]


async def test_two_racing_repositories_create_each_contact_once(backend: Backend) -> None:
    def batch(tag: str) -> list[tuple[str, Plan]]:
        return [
            (f"{tag}-m", Plan(mobile="+14155550199", attributes={tag: True})),
            (f"{tag}-e", Plan(email="race@x.io", attributes={tag: True})),
            *[(f"{tag}-{i}", Plan(mobile=f"+1415555{i:04d}")) for i in range(5)],
        ]

    one, two = await asyncio.gather(
        backend.contacts().apply(batch("a"), at(0)), backend.contacts().apply(batch("b"), at(0))
    )
    assert sorted([one["a-m"].status, two["b-m"].status]) == ["created", "updated"]
    assert sorted([one["a-e"].status, two["b-e"].status]) == ["created", "matched_email"]
    for i in range(5):
        assert sorted([one[f"a-{i}"].status, two[f"b-{i}"].status]) == ["created", "unchanged"]
    assert await backend.count({}) == 7
    merged = await backend.contacts().find(mobile="+14155550199")
    assert merged[0]["attributes"] == {"a": True, "b": True}


async def test_a_remembered_number_whose_contact_was_deleted_is_created_again(
    backend: Backend,
) -> None:
    contacts = backend.contacts()
    first = await contacts.apply([("e1", Plan(mobile="+14155550100"))], at(0))
    await backend.delete_contacts()
    again = await contacts.apply([("e2", Plan(mobile="+14155550100"))], at(1))
    assert again["e2"].status == "created"
    assert again["e2"].contact_id != first["e1"].contact_id


# ---------------------------------------------------------------- EventLog, StatsStore


def entry(event_id: str, **fields: Any) -> dict[str, Any]:
    return received(event_id) | fields


def verdict(event_id: str, status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return entry(event_id, status=status, outcome_at=T0 + timedelta(seconds=1), attempts=1) | fields


async def test_received_entries_are_new_once(backend: Backend) -> None:
    log = backend.store
    assert await log.record_received([entry("a"), entry("b")]) == {"a", "b"}
    assert await log.record_received([entry("b", body={"n": 2}), entry("c")]) == {"c"}
    kept = await log.get_event("c1", "b")
    assert kept["body"] == {"n": 1}  # the entry that was there stays as it is
    assert await log.get_event("other", "b") is None


async def test_verdicts_count_once_whichever_comes_first(backend: Backend) -> None:
    log = backend.store
    assert await log.record_outcomes([verdict("v")]) == ({"v"}, {"v"})
    assert await log.record_received([entry("v")]) == set()
    assert await log.record_received([entry("r", body={"n": 5})]) == {"r"}
    assert await log.record_outcomes([verdict("r", body={"n": 6}), verdict("s")]) == (
        {"r", "s"},
        {"s"},
    )
    again = [verdict("r", "failed"), verdict("s", "failed"), verdict("t")]
    assert await log.record_outcomes(again) == ({"t"}, {"t"})
    r = await log.get_event("c1", "r")
    assert (r["status"], r["attempts"], r["body"]) == ("succeeded", 1, {"n": 5})
    assert (await log.get_event("c1", "s"))["status"] == "succeeded"


async def test_an_entry_twice_in_one_call_is_new_once(backend: Backend) -> None:
    log = backend.store
    assert await log.record_received([entry("a"), entry("a")]) == {"a"}
    assert await log.record_outcomes([verdict("v"), verdict("v", "failed")]) == ({"v"}, {"v"})
    assert (await log.get_event("c1", "v"))["status"] == "succeeded"  # the first one


async def test_an_entry_too_large_is_refused_alone(backend: Backend) -> None:
    log = backend.store
    big = entry("big", body={"text": "x" * 17_000_000})
    refused: dict[str, str] = {}
    assert await log.record_received([big, entry("small")], refused) == {"small"}
    assert list(refused) == ["big"] and "too large" in refused["big"]
    refused = {}
    outcomes = [verdict("big2", body=big["body"]), verdict("ok")]
    assert await log.record_outcomes(outcomes, refused) == ({"ok"}, {"ok"})
    assert list(refused) == ["big2"]
    with pytest.raises(BulkWriteError):
        await log.record_received([entry("big3", body=big["body"])])


async def test_stats_add_up_per_connector(backend: Backend) -> None:
    stats = backend.store
    await stats.add_stats({"c1": {"received": 2, "failed": 1}, "c2": {"received": 0}})
    await stats.add_stats({"c1": {"received": 3, "duplicates": 1}})
    c1 = await stats.get_stats("c1")
    assert {k: c1[k] for k in ("received", "succeeded", "failed", "duplicates")} == {
        "received": 5,
        "succeeded": 0,
        "failed": 1,
        "duplicates": 1,
    }
    assert (await stats.get_stats("c2"))["received"] == 0


# ---------------------------------------------------------------- StructureStore, Directory


async def test_the_first_structure_wins_and_rows_are_found(backend: Backend) -> None:
    store = backend.store
    assert await store.get_structure("c1") is None
    assert await store.insert_structure_if_absent("c1", {"fields": [], "from_event": "e1"})
    assert not await store.insert_structure_if_absent("c1", {"fields": [], "from_event": "e2"})
    assert (await store.get_structure("c1"))["from_event"] == "e1"
    for email in ("a@x.io", "b@x.io", "c@x.io"):
        await store.insert("agents", {"_id": email})
    assert sorted(r["_id"] for r in await store.find("agents", {})) == [
        "a@x.io",
        "b@x.io",
        "c@x.io",
    ]
    assert len(await store.find("agents", {}, limit=2)) == 2


@pytest.mark.parametrize(
    "value",
    [2**31, 2**40, INT64_MAX, INT64_MIN, 2**64, -1.5, 1e300, True, "é\x00", [2**40, {"k": 0}]],
    ids=repr,
)
async def test_the_same_attribute_again_is_unchanged_at_every_edge(
    backend: Backend, value: Any
) -> None:
    """A value read back from the store is compared as the number it is: an integer beyond
    32 bits (``bson.Int64`` from MongoDB) brought again is unchanged, not rewritten."""
    plan = Plan(mobile="+14155550177", attributes={"v": value})
    first = await backend.contacts().apply([("a", plan)], at(0))
    # A new repository: no memory of the first write, so the stored contact is read.
    again = await backend.contacts().apply([("b", plan)], at(1))
    assert (first["a"].status, again["b"].status) == ("created", "unchanged")
    (stored,) = await backend.contacts().find(mobile="+14155550177")
    assert stored["attributes"] == {"v": value}
