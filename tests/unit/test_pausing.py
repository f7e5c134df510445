"""The release order of held events: arrival order, even when the mapper and executor
held some a few batches out of place."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from services.config import pausing

T0 = datetime(2026, 12, 2, tzinfo=UTC)


@dataclass
class _Seq:
    stream: int


@dataclass
class _Meta:
    sequence: _Seq


@dataclass
class _Msg:
    data: bytes
    metadata: _Meta


def _held(n: int, seq: int) -> Any:
    event = {"received": {"occurred_at": T0 + timedelta(microseconds=n), "event_id": f"e{n}"}}
    return _Msg(msgspec.json.encode(event), _Meta(_Seq(seq)))


@settings(deadline=None)  # a slow machine's first examples take a while
@given(
    count=st.integers(0, 3000),
    displacement=st.integers(0, 600),
    seed=st.integers(0, 2**32),
    batch=st.integers(1, 300),
)
def test_events_held_out_of_place_go_back_in_arrival_order(
    count: int, displacement: int, seed: int, batch: int
) -> None:
    rng = random.Random(seed)
    # Each event lands at most ``displacement`` places from where it arrived.
    keyed = sorted(range(count), key=lambda n: n + rng.uniform(0, displacement))
    held = [_held(n, seq) for seq, n in enumerate(keyed, start=1)]
    arrivals = pausing._Arrivals()
    out: list[Any] = []
    purged_to = 1
    for start in range(0, len(held), batch):
        for m in held[start : start + batch]:
            arrivals.add(m)  # type: ignore[arg-type]
        out += arrivals.ready(final=False)
        # Never purge a message that was not put back yet.
        assert arrivals.floor >= purged_to
        put_back = {m.metadata.sequence.stream for m in out}
        assert all(seq in put_back for seq in range(1, arrivals.floor))
        purged_to = arrivals.floor
    out += arrivals.ready(final=True)
    assert [msgspec.json.decode(m.data)["received"]["event_id"] for m in out] == [
        f"e{n}" for n in range(count)
    ]
    assert arrivals.floor == count + 1


def test_a_message_that_does_not_decode_goes_back_last() -> None:
    arrivals = pausing._Arrivals()
    odd = _Msg(b"not json", _Meta(_Seq(1)))
    arrivals.add(odd)  # type: ignore[arg-type]
    arrivals.add(_held(0, 2))  # type: ignore[arg-type]
    assert [m.metadata.sequence.stream for m in arrivals.ready(final=True)] == [2, 1]
