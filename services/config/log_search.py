"""Reading the event log by pages and by selections, at any size of log.

The database answers one time window at a time (``Store.events_between``), from an
index bounded on connector, time and at most one search term, so a page costs the
entries of the windows it reads, not the log's size.  This module chooses the
windows: the first from the connector's rate (about ``TARGET`` entries), growing
fourfold while they come back sparse, so a rare value is found in a few wide windows
and a common one in one narrow window.  Conditions past the first are checked here
on each entry's terms; a page examines at most ``MAX_EXAMINED`` entries and, short of
that, hands back a cursor where it stopped, so a search never runs unbounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from libs.domain.search import Term

TARGET = 1000  # entries a first window should hold
MAX_EXAMINED = 20_000  # entries one page may read before it answers
MIN_WINDOW_S = 1.0
Doc = dict[str, Any]
Cursor = tuple[datetime, str]  # (received_at, event id) of the last entry read


class Windows(Protocol):
    async def events_between(
        self,
        connector_id: str,
        *,
        low: datetime,
        high: datetime,
        high_inclusive: bool = False,
        terms: Sequence[Term] = (),
        newest_first: bool = True,
        limit: int = 0,
    ) -> list[Doc]: ...


@dataclass(frozen=True)
class Selection:
    """Which entries: each condition is a list of alternative search terms (one must
    be among the entry's terms), all conditions must hold; received in [after, before)."""

    conditions: Sequence[Sequence[Term]] = ()
    after: datetime | None = None
    before: datetime | None = None

    def rest_holds(self, doc: Doc) -> bool:
        """The conditions the database did not check (all but the first)."""
        terms = set(doc.get("terms") or ())
        return all(any(t in terms for t in alts) for alts in self.conditions[1:])


@dataclass
class Page:
    rows: list[Doc] = field(default_factory=list)
    cursor: Cursor | None = None  # where the next page starts; None: nothing older


def first_window_s(received: int, since: datetime, now: datetime) -> float:
    """A window expected to hold about ``TARGET`` entries at the connector's mean rate."""
    span = max((now - since).total_seconds(), MIN_WINDOW_S)
    rate = received / span
    return max(MIN_WINDOW_S, span if rate <= 0 else min(span, TARGET / rate))


def _before(doc: Doc, cursor: Cursor) -> bool:
    return (doc["received_at"], doc["_id"]) < cursor


async def newest(
    store: Windows,
    connector_id: str,
    selection: Selection,
    *,
    floor: datetime,
    now: datetime,
    window_s: float,
    limit: int,
    start: Cursor | None = None,
) -> Page:
    """Up to ``limit`` entries, newest first, older than ``start`` (a previous page's
    cursor) and ``selection.before``; nothing before ``floor`` (the connector's
    creation) is read."""
    first = list(selection.conditions[0]) if selection.conditions else []
    filtered = len(selection.conditions) > 1
    high = now + timedelta(seconds=1)
    if selection.before is not None:
        high = min(high, selection.before)
    inclusive = False
    if start is not None and start[0] <= high:
        high, inclusive = start[0], True
    low_bound = max(floor, selection.after) if selection.after is not None else floor
    page, examined, width = Page(), 0, window_s
    if not selection.conditions:
        # Every entry of a window is a row: a window of about two pages, not TARGET (the
        # database sorts a window's matches whole before it applies the limit).
        width = max(MIN_WINDOW_S, window_s * min(1.0, 2 * limit / TARGET))
    while high >= low_bound:
        low = max(low_bound, high - timedelta(seconds=width))
        wanted = limit - len(page.rows)
        rows = await store.events_between(
            connector_id,
            low=low,
            high=high,
            high_inclusive=inclusive,
            terms=first,
            # Filtered or starting at a cursor (whose entries at that instant were on
            # the pages before): the window is read whole, it was sized for that.
            limit=MAX_EXAMINED - examined if filtered else 0 if inclusive else wanted,
        )
        for doc in rows:
            examined += 1
            if start is not None and not _before(doc, start):
                continue  # the previous page's last entry, or one it already had
            if filtered and not selection.rest_holds(doc):
                continue
            page.rows.append(doc)
            if len(page.rows) == limit:
                page.cursor = (doc["received_at"], doc["_id"])
                return page
        if examined >= MAX_EXAMINED and rows:  # stop here; the cursor goes on from here
            last = rows[-1]
            page.cursor = (last["received_at"], last["_id"])
            return page
        if low <= low_bound:
            return page
        high, inclusive = low, False
        if len(rows) < TARGET:
            width *= 4
    return page


async def oldest(
    store: Windows,
    connector_id: str,
    selection: Selection,
    *,
    floor: datetime,
    ceiling: datetime,
    window_s: float,
    start: Cursor | None = None,
) -> AsyncIterator[list[Doc]]:
    """Every selected entry, oldest first, in batches (one per window read), after
    ``start`` and before ``ceiling``: what a bulk replay walks through."""
    first = list(selection.conditions[0]) if selection.conditions else []
    low = max(floor, selection.after) if selection.after is not None else floor
    high_bound = min(ceiling, selection.before) if selection.before is not None else ceiling
    if start is not None:
        low = max(low, start[0])
    width = window_s
    while low < high_bound:
        high = min(high_bound, low + timedelta(seconds=width))
        rows = await store.events_between(
            connector_id, low=low, high=high, terms=first, newest_first=False
        )
        batch = [
            d
            for d in rows
            if (start is None or (d["received_at"], d["_id"]) > start) and selection.rest_holds(d)
        ]
        if batch:
            yield batch
        low = high
        if len(rows) < TARGET:
            width *= 4
        elif len(rows) > 4 * TARGET:
            width = max(MIN_WINDOW_S, width / 4)
