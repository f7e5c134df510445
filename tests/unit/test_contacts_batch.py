"""The contacts repository's batching over the in-memory collection: a batch of plans
ends as the same contacts, with the same statuses, as the same plans written one by
one, and a batch of known numbers that brings nothing new writes nothing."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from libs.domain.contacts import Plan
from libs.domain.events import MappingResult
from libs.infra.mongo.contacts import Contacts
from tests.support.memory import MemoryCollection

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MOBILES = ["+14155550100", "+14155550101", "+14155550102"]
EMAILS = ["a@x.io", "b@x.io"]
# The email each number comes with, if any: two numbers share one, and no event moves a
# number to another email.  Two cases are left out because a batch does not write them
# as if one by one (it routes email-only events before it writes): a batch that moves
# a number to another email, then has an email-only event for the old one; and an
# email-only event, then the same email with a number, then email-only again.
EMAIL_OF = dict(zip(MOBILES, ["a@x.io", "a@x.io", "b@x.io"], strict=True))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    mobile = draw(st.none() | st.sampled_from(MOBILES))
    email = draw(st.none() | st.sampled_from([EMAIL_OF[mobile]] if mobile else EMAILS))
    return Plan(
        mobile=mobile,
        email=email,
        name=draw(st.none() | st.sampled_from(["Ann", "Bob"])),
        attributes=draw(
            st.dictionaries(st.sampled_from(["k", "j"]), st.integers(0, 2), max_size=2)
        ),
    )


def repository() -> tuple[Contacts, MemoryCollection]:
    counter = itertools.count()
    docs = MemoryCollection("contacts", unique=("mobile",))
    return Contacts(docs, new_id=lambda: f"id{next(counter):06d}"), docs


def shape(results: list[MappingResult]) -> list[tuple[str, int | None]]:
    """Each event's status and its contact, numbered by first appearance."""
    number: dict[str, int] = {}
    out: list[tuple[str, int | None]] = []
    for r in results:
        index = None if r.contact_id is None else number.setdefault(r.contact_id, len(number))
        out.append((r.status, index))
    return out


async def contents(docs: MemoryCollection) -> list[tuple[Any, ...]]:
    rows = await docs.find({})
    return sorted(
        (
            r.get("mobile") or "",
            r.get("email") or "",
            r.get("name") or "",
            sorted((r.get("attributes") or {}).items()),
        )
        for r in rows
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(plans(), max_size=6), st.lists(plans(), min_size=1, max_size=6))
def test_a_batch_is_written_as_if_one_by_one(before: list[Plan], batch: list[Plan]) -> None:
    email_only: set[str] = set()
    for plan in batch:
        if plan.mobile is None and plan.email is not None:
            email_only.add(plan.email)
        assume(plan.mobile is None or plan.email not in email_only)
    asyncio.run(_compare(before, batch))


async def _compare(before: list[Plan], batch: list[Plan]) -> None:
    together, one_by_one = repository(), repository()
    for contacts, _ in (together, one_by_one):  # the same contacts exist already
        await contacts.apply([(f"b{i}", p) for i, p in enumerate(before)], T0)
    events = [(f"e{i}", p) for i, p in enumerate(batch)]
    at = T0 + timedelta(minutes=1)
    batched = await together[0].apply(events, at)
    singly: dict[str, MappingResult] = {}
    for i, event in enumerate(events):
        singly |= await one_by_one[0].apply([event], at + timedelta(seconds=i))
    case = f"before={before!r} batch={batch!r}"
    assert shape([batched[e] for e, _ in events]) == shape([singly[e] for e, _ in events]), case
    assert await contents(together[1]) == await contents(one_by_one[1]), case


async def test_known_numbers_that_bring_nothing_new_write_nothing() -> None:
    contacts, docs = repository()
    batch = [(f"e{i}", Plan(mobile=m, attributes={"k": 1})) for i, m in enumerate(MOBILES)]
    assert {r.status for r in (await contacts.apply(batch, T0)).values()} == {"created"}
    docs.calls.clear()
    again = await contacts.apply(batch, T0 + timedelta(minutes=1))
    assert {r.status for r in again.values()} == {"unchanged"}
    assert docs.calls == ["find"]  # remembered as stored: read, compared, not written
    rows = await docs.find({})
    assert {r["updated_at"] for r in rows} == {T0}
