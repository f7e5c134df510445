"""The alerts' pure core: windows every replica agrees on, and when a window calls for
a notification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from libs.domain import alerts

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
lengths = st.floats(min_value=10, max_value=7 * 86400)


@given(now=instants, window_s=lengths)
def test_an_instant_falls_in_the_window_that_starts_before_it(
    now: datetime, window_s: float
) -> None:
    start = alerts.window_start(now, window_s)
    assert start <= now < start + timedelta(seconds=window_s)
    # Any instant of the same window names the same window.
    later = start + timedelta(seconds=window_s * 0.999)
    assert alerts.window_start(later, window_s) == start
    assert alerts.window_id("c", start, window_s) == alerts.window_id(
        "c", alerts.window_start(later, window_s), window_s
    )


@given(
    total=st.integers(0, 1000),
    failed_share=st.floats(0, 1),
    dead=st.integers(0, 5),
    ratio=st.none() | st.floats(min_value=0.01, max_value=1),
    min_events=st.integers(1, 50),
    on_dead_letter=st.booleans(),
)
def test_the_reason_follows_the_configuration(
    total: int,
    failed_share: float,
    dead: int,
    ratio: float | None,
    min_events: int,
    on_dead_letter: bool,
) -> None:
    failed = int(total * failed_share)
    alert = alerts.AlertConfig(
        channel="c", failure_ratio=ratio, min_events=min_events, on_dead_letter=on_dead_letter
    )
    window = alerts.Window(total=total, failed=failed, dead_lettered=min(dead, failed))
    why = alerts.reason(alert, window)
    if on_dead_letter and window.dead_lettered:
        assert why == "dead_lettered"
    elif ratio is not None and total >= min_events and failed / total >= ratio:
        assert why == "failure_ratio"
    else:
        assert why is None


def test_the_message_says_what_happened() -> None:
    alert = alerts.AlertConfig(channel="c", failure_ratio=0.5)
    window = alerts.Window(total=10, failed=6, last_event_id="e9", last_error="HTTP 500")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    note = alerts.message(
        alert, window, "failure_ratio", connector_id="c1", connector_name="shop", start=start
    )
    assert note["subject"] == "[Hookline] shop: 6 of 10 events failed (60%)"
    assert "e9" in note["text"] and "HTTP 500" in note["text"]
    assert (note["failure_ratio"], note["threshold"]) == (0.6, 0.5)
