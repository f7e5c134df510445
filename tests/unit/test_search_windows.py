"""The log's search core: terms of an entry (``libs.domain.search``) and the windows a
page or a bulk replay reads (``services.config.log_search``), checked on generated logs
against a plain scan of the same entries."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.domain import search
from services.config import log_search

T0 = datetime(2026, 1, 1, tzinfo=UTC)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
bodies = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


def _leaf_paths(value: Any, keys: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaf_paths(v, (*keys, k))]
    if isinstance(value, list):
        return [p for v in value for p in _leaf_paths(v, keys)]
    return [(keys, value)]


@given(body=st.dictionaries(st.text(min_size=1, max_size=4), bodies, min_size=1))
def test_every_scalar_of_a_body_is_found_at_its_path(body: dict[str, Any]) -> None:
    terms, truncated = search.event_terms(
        status="received", body=body, headers=None, custom_variables=None
    )
    assert not truncated
    for keys, value in _leaf_paths(body):
        if isinstance(value, float) or any(not k or not k.isidentifier() for k in keys):
            continue  # floats: spelled canonically below; odd keys: not a dotted path
        text = search.text(value)
        assert text is not None
        name = "body." + ".".join(keys)
        assert set(search.condition(name, text)) & set(terms), (name, text)


def test_numbers_match_in_any_spelling_and_text_matches_text_only() -> None:
    terms, _ = search.event_terms(
        status=None, body={"a": 1.5, "b": "5", "c": 2**64}, headers=None, custom_variables=None
    )
    assert set(search.condition("body.a", "1.50")) & set(terms)
    assert set(search.condition("body.b", "5")) & set(terms)
    assert set(search.condition("body.c", str(2**64))) & set(terms)
    assert not set(search.condition("body.a", "1.6")) & set(terms)
    assert not set(search.condition("body.b", "5.0")) & set(terms)  # "5" is a string there


def test_terms_are_bounded_and_say_so() -> None:
    body = {f"k{i}": i for i in range(search.MAX_TERMS * 2)}
    terms, truncated = search.event_terms(
        status="x", body=body, headers=None, custom_variables=None
    )
    assert truncated and len(terms) == search.MAX_TERMS


@pytest.mark.parametrize("name", ["body", "body.", "nope.a", "body.a[", "headers."])
def test_bad_names_raise(name: str) -> None:
    with pytest.raises(search.SearchError):
        search.condition(name, "1")


def test_transport_headers_and_credentials_are_not_terms_and_not_searchable() -> None:
    headers = {
        "Host": "h",
        "Content-Length": "3",
        "Authorization": "Bearer s",
        "X-Hub-Signature-256": "sha256=ab",
        "X-Shopify-Hmac-Sha256": "cd",
        "X-Shop": "s1",
    }
    terms, _ = search.event_terms(status=None, body={}, headers=headers, custom_variables=None)
    (term,) = terms  # the one searched header
    assert term in search.condition("headers.x-shop", "s1")
    unsearched = ("host", "content-length", "authorization", "x-hub-signature-256")
    for name in (f"headers.{h}" for h in (*unsearched, "Stripe-Signature")):
        with pytest.raises(search.SearchError, match="not searchable"):
            search.condition(name, "h")


class Log:
    """An in-memory ``Windows``: the store's contract, on a list."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.reads = 0

    async def events_between(
        self,
        connector_id: str,
        *,
        low: datetime,
        high: datetime,
        high_inclusive: bool = False,
        terms: Sequence[int] = (),
        newest_first: bool = True,
        limit: int = 0,
    ) -> list[dict[str, Any]]:
        self.reads += 1
        rows = [
            d
            for d in self.docs
            if low <= d["received_at"]
            and (d["received_at"] <= high if high_inclusive else d["received_at"] < high)
            and (not terms or set(terms) & set(d["terms"]))
        ]
        rows.sort(key=lambda d: (d["received_at"], d["_id"]), reverse=newest_first)
        return rows[:limit] if limit else rows


logs = st.lists(
    st.tuples(st.integers(0, 5000), st.sets(st.sampled_from([1, 2, 3, 4]), max_size=3)),
    max_size=150,
)


def _docs(entries: list[tuple[int, set[int]]]) -> list[dict[str, Any]]:
    return [
        {"_id": f"e{i:04d}", "received_at": T0 + timedelta(seconds=s), "terms": sorted(t)}
        for i, (s, t) in enumerate(entries)
    ]


@settings(max_examples=150, deadline=None)
@given(
    entries=logs,
    conditions=st.lists(st.sets(st.sampled_from([1, 2, 3, 4]), min_size=1), max_size=2),
    limit=st.integers(1, 20),
    window_s=st.floats(1, 3000),
    after=st.none() | st.integers(0, 5000),
    before=st.none() | st.integers(0, 5000),
)
async def test_pages_newest_first_hold_each_match_once(
    entries: list[tuple[int, set[int]]],
    conditions: list[set[int]],
    limit: int,
    window_s: float,
    after: int | None,
    before: int | None,
) -> None:
    docs = _docs(entries)
    selection = log_search.Selection(
        conditions=[sorted(c) for c in conditions],
        after=None if after is None else T0 + timedelta(seconds=after),
        before=None if before is None else T0 + timedelta(seconds=before),
    )
    expected = sorted(
        (
            d
            for d in docs
            if all(set(c) & set(d["terms"]) for c in selection.conditions)
            and (selection.after is None or d["received_at"] >= selection.after)
            and (selection.before is None or d["received_at"] < selection.before)
        ),
        key=lambda d: (d["received_at"], d["_id"]),
        reverse=True,
    )
    log, found, start = Log(docs), [], None
    for _ in range(len(docs) + 2):
        page = await log_search.newest(
            log, "c", selection, floor=T0 - timedelta(seconds=1),
            now=T0 + timedelta(seconds=5001), window_s=window_s, limit=limit, start=start,
        )  # fmt: skip
        assert len(page.rows) <= limit
        found += page.rows
        if page.cursor is None:
            break
        start = page.cursor
    assert [d["_id"] for d in found] == [d["_id"] for d in expected]

    walked = [
        d
        async for batch in log_search.oldest(
            log,
            "c",
            selection,
            floor=T0 - timedelta(seconds=1),
            ceiling=T0 + timedelta(seconds=5001),
            window_s=window_s,
        )
        for d in batch
    ]
    assert [d["_id"] for d in walked] == [d["_id"] for d in reversed(expected)]


def test_entries_hold_hash_bytes_and_a_search_also_asks_the_former_string() -> None:
    """Entries logged by the previous release hold a 9-byte hash of the same text as a
    12-character base64 string (its known value for body.id=5 below)."""
    terms, _ = search.event_terms(
        status="failed", body={"id": 5}, headers=None, custom_variables=None
    )
    assert all(isinstance(t, bytes) and len(t) == 8 for t in terms)
    asked = search.condition("body.id", "5")
    new = [t for t in asked if isinstance(t, bytes)]
    assert new and set(new) <= set(terms)
    former = "\x1f".join(("body", "id")) + "\x00" + "5"
    digest = hashlib.blake2b(former.encode(), digest_size=9).digest()
    assert [t for t in asked if isinstance(t, str)] == [base64.urlsafe_b64encode(digest).decode()]
    assert search.status_term("failed") in terms
