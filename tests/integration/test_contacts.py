"""The contacts repository and the contacts API against a real SecantusDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from pymongo import AsyncMongoClient, monitoring

from libs.domain.connector import FieldMapping
from libs.domain.contacts import NO_IDENTITY, InvalidField, MobileTaken, Plan
from libs.domain.mapping import plan
from libs.infra.mongo import store as hmongo
from libs.infra.mongo.contacts import Contacts
from libs.infra.settings import Settings
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def contacts(store: hmongo.Store) -> Contacts:
    return Contacts(store)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_created_then_updated_for_the_same_mobile(
    contacts: Contacts, store: hmongo.Store
) -> None:
    mapping = FieldMapping(
        mobile="body.phone",
        email="body.email",
        name="body.name",
        channel="wa-main",
        attributes={"city": "body.city"},
    )

    def event(**body: str) -> Plan:
        return plan(mapping, {"body": body}, known_channels=None, known_agents=None)

    first = await contacts.apply([("e1", event(phone="(415) 555-0100", name="Ann"))], at(0))
    assert first["e1"].status == "created"
    assert first["e1"].contact is not None
    assert first["e1"].contact["mobile"] == "+14155550100"

    second = await contacts.apply(
        [("e2", event(phone="+1 415 555 0100", email="Ann@X.io", name="Ann Lee", city="Oslo"))],
        at(1),
    )
    assert second["e2"].status == "updated"
    assert second["e2"].contact_id == first["e1"].contact_id
    assert second["e2"].contact == {
        "id": first["e1"].contact_id,
        "name": "Ann Lee",
        "email": "ann@x.io",
        "mobile": "+14155550100",
        "time_zone": None,
        "attributes": {"city": "Oslo"},
        "owner": None,
        "channel": "wa-main",
    }
    assert await store.contacts.count_documents({}) == 1
    doc = await store.contacts.find_one({})
    assert doc is not None
    assert (doc["created_at"], doc["updated_at"]) == (at(0), at(1))


async def test_email_only_matches_the_first_added_contact(contacts: Contacts) -> None:
    await contacts.apply(
        [("older", Plan(mobile="+14155550100", email="shared@x.io", name="Older"))], at(0)
    )
    await contacts.apply(
        [("newer", Plan(mobile="+14155550101", email="shared@x.io", name="Newer"))], at(5)
    )
    result = await contacts.apply(
        [("e", Plan(email="shared@x.io", attributes={"plan": "pro"}))], at(10)
    )
    assert result["e"].status == "matched_email"
    assert result["e"].contact is not None
    assert result["e"].contact["name"] == "Older"
    assert result["e"].contact["mobile"] == "+14155550100"
    assert result["e"].contact["attributes"] == {"plan": "pro"}
    newer = await contacts.find(mobile="+14155550101")
    assert newer[0]["attributes"] == {}


async def test_email_only_creates_once_then_matches(
    contacts: Contacts, store: hmongo.Store
) -> None:
    batch = [("a", Plan(email="new@x.io", name="A")), ("b", Plan(email="new@x.io", name="B"))]
    results = await contacts.apply(batch, at(0))
    assert [results["a"].status, results["b"].status] == ["created", "matched_email"]
    assert results["a"].contact_id == results["b"].contact_id
    again = await contacts.apply([("c", Plan(email="new@x.io"))], at(1))
    assert again["c"].status == "matched_email"
    assert again["c"].contact_id == results["a"].contact_id
    rows = await store.contacts.find({}).to_list(None)
    assert len(rows) == 1
    assert "mobile" not in rows[0]  # a null would collide in the sparse unique index
    assert rows[0]["name"] == "B"


async def test_email_only_after_same_email_with_mobile_in_one_batch(contacts: Contacts) -> None:
    batch = [
        ("with-mobile", Plan(mobile="+14155550100", email="ann@x.io")),
        ("email-only", Plan(email="ann@x.io", name="Ann")),
    ]
    results = await contacts.apply(batch, at(0))
    assert results["with-mobile"].status == "created"
    assert results["email-only"].status == "matched_email"
    assert results["email-only"].contact_id == results["with-mobile"].contact_id
    assert results["email-only"].contact is not None
    assert results["email-only"].contact["name"] == "Ann"


@pytest.mark.parametrize(
    ("plan_", "status", "reason", "errors"),
    [
        (Plan(skip_reason=NO_IDENTITY), "skipped", NO_IDENTITY, []),
        (
            Plan(skip_reason=NO_IDENTITY, errors=["mobile 'xyz' is not a valid phone number"]),
            "error",
            NO_IDENTITY,
            ["mobile 'xyz' is not a valid phone number"],
        ),
    ],
    ids=["nothing-mapped", "only-invalid-values"],
)
async def test_skipped_without_mobile_or_email(
    contacts: Contacts,
    store: hmongo.Store,
    plan_: Plan,
    status: str,
    reason: str,
    errors: list[str],
) -> None:
    results = await contacts.apply([("e", plan_), ("ok", Plan(mobile="+14155550100"))], at(0))
    assert (results["e"].status, results["e"].reason, results["e"].errors) == (
        status,
        reason,
        errors,
    )
    assert results["e"].contact is None
    assert results["ok"].status == "created"
    assert await store.contacts.count_documents({}) == 1


async def test_two_racing_batches_create_one_contact(
    settings: Settings, store: hmongo.Store
) -> None:
    """Two mappers (two repositories, neither has seen the numbers) write batches for the
    same 21 new numbers and one new email at once: the unique indexes let one insert
    each number; the other's inserts fail with duplicate keys and become updates."""

    def batch(tag: str) -> list[tuple[str, Plan]]:
        return [
            (f"{tag}-m", Plan(mobile="+14155550199", attributes={tag: True})),
            (f"{tag}-e", Plan(email="race@x.io", attributes={tag: True})),
            *[(f"{tag}-{i}", Plan(mobile=f"+1415555{i:04d}")) for i in range(20)],
        ]

    listener = Commands()
    client = AsyncMongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        mapper_a = Contacts(hmongo.Store(client, settings.mongo_db))
        mapper_b = Contacts(hmongo.Store(client, settings.mongo_db))
        one, two = await asyncio.gather(
            mapper_a.apply(batch("a"), at(0)), mapper_b.apply(batch("b"), at(0))
        )
    finally:
        await client.close()
    assert listener.names.count("insert") == 2
    assert listener.duplicate_keys == 21  # the losing insert_many, one error per number
    assert sorted([one["a-m"].status, two["b-m"].status]) == ["created", "updated"]
    assert one["a-m"].contact_id == two["b-m"].contact_id
    assert sorted([one["a-e"].status, two["b-e"].status]) == ["created", "matched_email"]
    for i in range(20):
        pair = sorted([one[f"a-{i}"].status, two[f"b-{i}"].status])
        assert pair == ["created", "unchanged"]
        assert one[f"a-{i}"].contact_id == two[f"b-{i}"].contact_id
    assert await store.contacts.count_documents({"mobile": "+14155550199"}) == 1
    assert await store.contacts.count_documents({"email": "race@x.io"}) == 1
    assert await store.contacts.count_documents({}) == 22
    merged = await Contacts(store).find(mobile="+14155550199")
    assert merged[0]["attributes"] == {"a": True, "b": True}


class Commands(monitoring.CommandListener):
    """The commands a client sent to the contacts collection, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.duplicate_keys = 0  # write errors with code 11000 in the replies

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == "contacts":
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        errors = event.reply.get("writeErrors") or []
        self.duplicate_keys += sum(1 for e in errors if e.get("code") == 11000)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_round_trips_new_numbers_one_insert_known_ones_read_then_changes_written(
    settings: Settings, store: hmongo.Store
) -> None:
    """The mapper's throughput rests on this: a batch of new numbers is one insert, not a
    read, a write and a read back; known numbers cost a failed insert and a read in $in
    finds of at most 32 values (SecantusDB's $in is quadratic), then one bulk update of
    the contacts that change; an event that brings nothing new writes nothing."""
    listener = Commands()
    client = AsyncMongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        contacts = Contacts(hmongo.Store(client, settings.mongo_db))
        batch = [(f"n{i}", Plan(mobile=f"+1415555{i:04d}", name=f"N{i}")) for i in range(40)]
        created = await contacts.apply(batch, at(0))
        assert listener.names == ["insert"]
        assert {r.status for r in created.values()} == {"created"}
        for result in created.values():  # the result is what was stored
            assert result.contact is not None and result.contact_id is not None
            stored = await contacts.get(result.contact_id)
            assert stored is not None
            assert result.contact == {k: stored[k] for k in result.contact}

        def again(tag: str) -> list[tuple[str, Plan]]:
            # numbers 0-19 get attribute v, 20-39 bring what their contact has already
            return [
                (
                    f"{tag}{i}",
                    Plan(mobile=f"+1415555{i:04d}", attributes={"v": i} if i < 20 else {}),
                )
                for i in range(40)
            ]

        listener.names.clear()
        second = await contacts.apply([*again("a"), ("new", Plan(mobile="+14155559999"))], at(1))
        assert listener.names == ["insert", "find", "find", "update"]
        assert second["new"].status == "created"
        for i in range(40):
            result = second[f"a{i}"]
            assert result.status == ("updated" if i < 20 else "unchanged")
            assert result.contact_id == created[f"n{i}"].contact_id
            assert result.contact is not None
            assert result.contact["name"] == f"N{i}"
            assert result.contact["attributes"] == ({"v": i} if i < 20 else {})

        listener.names.clear()
        third = await contacts.apply(again("b"), at(2))
        assert listener.names == ["find", "find"]  # it remembers these numbers are stored
        assert {r.status for r in third.values()} == {"unchanged"}

        listener.names.clear()  # a process that has not seen them tries the insert first
        cold = await Contacts(hmongo.Store(client, settings.mongo_db)).apply(again("c"), at(2))
        assert listener.names == ["insert", "find", "find"]
        assert {r.status for r in cold.values()} == {"unchanged"}
        changed = await store.contacts.find({"updated_at": at(1)}, {"mobile": 1}).to_list(None)
        assert sorted(d["mobile"] for d in changed) == [
            *(f"+1415555{i:04d}" for i in range(20)),
            "+14155559999",  # created then
        ]
    finally:
        await client.close()


async def test_a_remembered_number_whose_contact_was_deleted_is_created_again(
    contacts: Contacts, store: hmongo.Store
) -> None:
    first = await contacts.apply([("e1", Plan(mobile="+14155550100", name="Ann"))], at(0))
    await store.contacts.delete_many({})  # the repository still thinks the number is stored
    again = await contacts.apply([("e2", Plan(mobile="+14155550100", name="Ann"))], at(1))
    assert again["e2"].status == "created"
    assert again["e2"].contact_id != first["e1"].contact_id
    stored = await contacts.find(mobile="+14155550100")
    assert [(c["id"], c["name"]) for c in stored] == [(again["e2"].contact_id, "Ann")]


async def test_subscriber_attributes_merge(contacts: Contacts) -> None:
    await contacts.apply(
        [("e1", Plan(mobile="+14155550100", attributes={"city": "Oslo", "plan": "free"}))], at(0)
    )
    results = await contacts.apply(
        [("e2", Plan(mobile="+14155550100", attributes={"plan": "pro", "tags": ["vip"]}))], at(1)
    )
    assert results["e2"].contact is not None
    assert results["e2"].contact["attributes"] == {"city": "Oslo", "plan": "pro", "tags": ["vip"]}


async def test_email_id_collision_is_an_error_not_a_crash(contacts: Contacts) -> None:
    """The id derived from an email is taken by a contact whose email was changed since:
    the upsert hits a duplicate key, its one retry matches nothing, the event says so."""
    created = await contacts.apply([("a", Plan(email="old@x.io"))], at(0))
    contact_id = created["a"].contact_id
    assert contact_id is not None
    await contacts.update_fields(contact_id, {"email": "changed@x.io"})
    results = await contacts.apply(
        [("b", Plan(email="old@x.io")), ("c", Plan(mobile="+14155550100"))], at(1)
    )
    assert results["b"].status == "error"
    assert results["b"].reason == "contact not written: no contact matched"
    assert results["c"].status == "created"  # the rest of the batch is written
    unchanged = await contacts.get(contact_id)
    assert unchanged is not None
    assert unchanged["email"] == "changed@x.io"


async def test_update_fields_and_set_owner(contacts: Contacts) -> None:
    results = await contacts.apply(
        [
            ("a", Plan(mobile="+14155550100", attributes={"city": "Oslo"})),
            ("b", Plan(mobile="+14155550101")),
        ],
        at(0),
    )
    cid = results["a"].contact_id
    assert cid is not None
    updated = await contacts.update_fields(
        cid,
        {"name": " Ann ", "time_zone": "Europe/Oslo", "plan": "pro", "attributes.city": None},
        now=at(1),
    )
    assert updated is not None
    assert (updated["name"], updated["time_zone"], updated["attributes"]) == (
        "Ann",
        "Europe/Oslo",
        {"plan": "pro"},
    )
    owned = await contacts.set_owner(cid, "Bob@Shop.IO")
    assert owned is not None
    assert owned["owner"] == "bob@shop.io"
    with pytest.raises(MobileTaken):
        await contacts.update_fields(cid, {"mobile": "+1 415 555 0101"})
    with pytest.raises(InvalidField):
        await contacts.update_fields(cid, {"time_zone": "Mars/Olympus"})
    with pytest.raises(InvalidField):
        await contacts.set_owner(cid, "not an email")
    assert await contacts.update_fields("nope", {"name": "x"}) is None
    assert await contacts.set_owner("nope", "bob@shop.io") is None


# ---------------------------------------------------------------- the API


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    system = await InProcessSystem(settings).start(only=("config",))
    async with aiohttp.ClientSession() as session:
        yield Api(session, system.apps["config"].url, settings.admin_token)
    await system.stop()


async def test_api_search_by_mobile_and_email(api: Api, contacts: Contacts) -> None:
    results = await contacts.apply(
        [
            ("gb", Plan(mobile="+442079460958", email="uk@x.io", name="UK")),
            ("us1", Plan(mobile="+14155550100", email="ann@x.io", name="Ann")),
        ],
        at(0),
    )
    await contacts.apply([("us2", Plan(mobile="+14155550101", email="ann@x.io"))], at(1))
    ann = results["us1"].contact_id

    by_mobile = await api.call("GET", "/api/v1/contacts?mobile=(415)%20555-0100", expect=200)
    assert [c["id"] for c in by_mobile["items"]] == [ann]
    assert by_mobile["items"][0]["created_at"] == at(0).isoformat()
    # A literal "+" in the query is a plus, not a space.
    by_plus = await api.call("GET", "/api/v1/contacts?mobile=+44 20 7946 0958", expect=200)
    assert [c["name"] for c in by_plus["items"]] == ["UK"]

    by_email = await api.call("GET", "/api/v1/contacts?email=ANN@X.IO", expect=200)
    assert [c["mobile"] for c in by_email["items"]] == ["+14155550100", "+14155550101"]
    both = await api.call(
        "GET", "/api/v1/contacts?email=ann@x.io&mobile=%2B14155550101", expect=200
    )
    assert [c["mobile"] for c in both["items"]] == ["+14155550101"]
    none = await api.call("GET", "/api/v1/contacts?email=nobody@x.io", expect=200)
    assert none == {"items": []}

    one = await api.call("GET", f"/api/v1/contacts/{ann}", expect=200)
    assert (one["name"], one["email"]) == ("Ann", "ann@x.io")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/contacts", 400, "query_required"),
        ("/api/v1/contacts?mobile=xyz", 400, "invalid_mobile"),
        ("/api/v1/contacts?email=a@x.io&limit=0", 400, "invalid_limit"),
        ("/api/v1/contacts/unknown", 404, "not_found"),
    ],
    ids=["no-query", "bad-mobile", "bad-limit", "unknown-id"],
)
async def test_api_errors(api: Api, path: str, status: int, code: str) -> None:
    body = await api.call("GET", path, expect=status)
    assert body["error"]["code"] == code
