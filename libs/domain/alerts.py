"""Alerts to the operator (F14): when a connector dead-letters events or fails too
often, a notification through one of its channels, at most once per window.

Pure: the alert's configuration, the windows (tumbling, aligned to the epoch, so every
executor replica counts an instant into the same one), the decision and the message.
The counting and the sending are the executor's (``services.executor.alerts``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

Reason = Literal["dead_lettered", "failure_ratio"]


class AlertConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Notify through ``channel`` (an email or HTTP channel) when, within one window of
    ``window_s`` seconds, an event is dead-lettered (``on_dead_letter``) or at least
    ``min_events`` ran and the share that failed reached ``failure_ratio``."""

    channel: str
    to: str | None = None  # an email channel's recipients (comma-separated)
    path: str = ""  # an HTTP channel: posted to its base URL + this path
    on_dead_letter: bool = True
    failure_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    min_events: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10
    window_s: Annotated[float, msgspec.Meta(ge=10, le=7 * 86400)] = 300.0


class Window(msgspec.Struct, kw_only=True):
    """One connector's counts in one window."""

    total: int = 0
    failed: int = 0
    dead_lettered: int = 0
    last_event_id: str = ""
    last_error: str | None = None


def window_start(now: datetime, window_s: float) -> datetime:
    """The start of the window ``now`` falls in."""
    start = math.floor(now.timestamp() / window_s) * window_s
    return datetime.fromtimestamp(start, UTC)


def window_id(connector_id: str, start: datetime, window_s: float) -> str:
    """One id per connector and window (the window's length in it: a changed
    ``window_s`` starts new windows)."""
    return f"{connector_id}:{window_s:g}:{int(start.timestamp())}"


def reason(alert: AlertConfig, window: Window) -> Reason | None:
    """Why the window calls for a notification (None: it does not)."""
    if alert.on_dead_letter and window.dead_lettered:
        return "dead_lettered"
    if (
        alert.failure_ratio is not None
        and window.total >= alert.min_events
        and window.failed / window.total >= alert.failure_ratio
    ):
        return "failure_ratio"
    return None


def message(
    alert: AlertConfig,
    window: Window,
    why: Reason,
    *,
    connector_id: str,
    connector_name: str,
    start: datetime,
) -> dict[str, Any]:
    """The notification: its fields (posted as JSON by an HTTP channel) and, for
    email, ``subject`` and ``text``."""
    ratio = window.failed / window.total if window.total else 0.0
    if why == "dead_lettered":
        headline = f"{window.dead_lettered} event(s) dead-lettered"
    else:
        headline = f"{window.failed} of {window.total} events failed ({ratio:.0%})"
    fields: dict[str, Any] = {
        "type": "hookline.alert",
        "reason": why,
        "connector_id": connector_id,
        "connector_name": connector_name,
        "window_start": start.isoformat(),
        "window_s": alert.window_s,
        "total": window.total,
        "failed": window.failed,
        "dead_lettered": window.dead_lettered,
        "failure_ratio": round(ratio, 4),
        "threshold": alert.failure_ratio,
        "last_event_id": window.last_event_id,
        "last_error": window.last_error,
    }
    text = "\n".join(
        [
            f"Connector {connector_name!r} ({connector_id}): {headline}",
            f"in the {alert.window_s:g} s window from {start.isoformat()}.",
            f"Last event: {window.last_event_id}",
            f"Last error: {window.last_error or '-'}",
            "",
            "The event log has the details; a bulk replay runs the failed events again.",
            "This is the only alert for this window.",
        ]
    )
    subject = f"[Hookline] {connector_name}: {headline}"
    return fields | {"subject": subject[:200], "text": text}
