"""``hookline events``: list, show, tail, replay logged events."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from libs.domain.events import StepLog
from services.config import models
from services.config.cli.client import Client, connector, segment
from services.config.cli.errors import CONNECT, CliError
from services.config.cli.output import (
    Column,
    Item,
    Output,
    dumps,
    of_model,
    pairs,
    short,
    table,
)
from services.config.cli.selection import (
    AfterOption,
    BeforeTimeOption,
    WhereOption,
    query_of,
)
from services.config.cli.session import ConnectorId, Session, command

TAIL_PAGE = 100  # events fetched per poll of `events tail --follow`
TAIL_PAGES = 10  # at most this many pages per poll when many events arrived

app = typer.Typer(help="list, show, tail, replay logged events", no_args_is_help=True)


class Status(StrEnum):
    received = "received"
    succeeded = "succeeded"
    failed = "failed"
    rejected = "rejected"
    handshake = "handshake"
    dead_lettered = "dead_lettered"


EventId = Annotated[str, typer.Argument(metavar="EVENT_ID", show_default=False)]
StatusOption = Annotated[Status | None, typer.Option(show_default=False)]

EVENTS = of_model(
    models.EventSummary,
    Column("EVENT", "event_id"),
    Column("RECEIVED", "received_at"),
    Column("STATUS", "status", width=len("succeeded")),  # widths: `tail` rows stay aligned
    Column("VERSION", "connector_version", right=True),
    Column("ERROR", lambda e: short(e.get("error"))),
)
EVENT = of_model(
    models.EventDetail,
    ("event", "event_id"),
    ("received", "received_at"),
    ("status", "status"),
    ("version", "connector_version"),
    ("error", "error"),
    ("replay of", "replay_of"),
    ("method", "request.method"),
    ("content type", "request.content_type"),
    ("source", "request.source_ip"),
    ("mapping", "mapping.status"),
)
STEPS = of_model(
    StepLog,
    Column("STEP", "step_id"),
    Column("TYPE", "type"),
    Column("STATUS", "status"),
    Column("MS", "duration_ms", right=True),
    Column("ERROR", lambda s: short(s.get("error"))),
)


@command(app, "list", "the event log, newest first")
def list_(
    s: Session,
    cid: ConnectorId,
    status: StatusOption = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N")] = 50,
    before: Annotated[
        str | None,
        typer.Option(
            metavar="CURSOR",
            help="the next page: the cursor printed after a page (next_before), "
            "or an ISO 8601 time",
        ),
    ] = None,
    where: WhereOption = None,
    after: AfterOption = None,
    before_time: BeforeTimeOption = None,
) -> None:
    """The event log, newest first; every --where, --status and the time range must
    hold.  After a page that is not the last, stderr says how to get the next one."""
    query: dict[str, Any] = {
        "status": status,
        "limit": limit,
        "before": before,
        "received_after": after,
        "received_before": before_time,
        **query_of(where or []),
    }
    data = s.api.call("GET", connector(cid) + "/events", query=query)
    s.out.emit(data, lambda d: table(EVENTS, d["items"]))
    if not s.out.json and data.get("next_before"):
        print(f"next page: --before {data['next_before']}", file=sys.stderr)


def event_text(e: Item) -> str:
    parts = [pairs(EVENT, e), "event:\n" + dumps(e.get("event"))]
    if steps := e.get("execution") or []:
        parts.append("execution:\n" + table(STEPS, steps))
    return "\n".join(parts)


@command(app, "show", "one event: request, event, mapping, execution")
def show(s: Session, cid: ConnectorId, event_id: EventId) -> None:
    s.out.emit(s.api.call("GET", f"{connector(cid)}/events/{segment(event_id)}"), event_text)


@command(app, "tail", "the latest events; --follow for new ones")
def tail(
    s: Session,
    cid: ConnectorId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep polling until Ctrl-C")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, max=3600, metavar="S", help="poll every S s")
    ] = 1.0,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="how many to show first")] = 10,
    status: StatusOption = None,
) -> None:
    Tail(s.api, s.out, cid, status).run(limit, interval if follow else None)


@command(app, "replay", "run a logged event again")
def replay(
    s: Session,
    cid: ConnectorId,
    event_id: EventId,
    version: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="against this kept version")
    ] = None,
) -> None:
    body = models.Replay(version=version) if version is not None else None
    data = s.api.call("POST", f"{connector(cid)}/events/{segment(event_id)}/replay", body)
    s.out.emit(
        data,
        lambda d: f"replaying {d['replay_of']} as event {d['event_id']} (version {d['version']})",
    )


class Tail:
    """Prints events oldest first, then (``--follow``) every new event and every change
    of an event's status, polling the newest pages of the log."""

    def __init__(self, api: Client, out: Output, cid: str, status: str | None) -> None:
        self.api = api
        self.out = out
        self.path = connector(cid) + "/events"
        self.status = status
        self.seen: dict[str, Any] = {}  # event id -> last printed status
        self.header = False

    def page(self, limit: int, before: str | None = None) -> tuple[list[dict[str, Any]], Any]:
        """Events newest first, and the cursor of the next (older) page, if any."""
        query = {"status": self.status, "limit": limit, "before": before}
        data = self.api.call("GET", self.path, query=query)
        return data["items"], data.get("next_before")

    def fresh(self) -> list[dict[str, Any]]:
        """New or changed events, newest first; more pages while a whole page is new."""
        items, cursor = self.page(TAIL_PAGE)
        out = list(items)
        pages = 1
        while cursor and pages < TAIL_PAGES and not any(e["event_id"] in self.seen for e in items):
            items, cursor = self.page(TAIL_PAGE, before=cursor)
            out.extend(items)
            pages += 1
        return [e for e in out if self.seen.get(e["event_id"], object()) != e.get("status")]

    def show(self, newest_first: list[dict[str, Any]]) -> None:
        for event in reversed(newest_first):
            self.seen[event["event_id"]] = event.get("status")
            if self.out.json:
                print(dumps(event, indent=None), flush=True)
                continue
            header, row = table(EVENTS, [event]).split("\n")
            if not self.header:
                print(header, flush=True)
                self.header = True
            print(row, flush=True)

    def run(self, limit: int, interval: float | None) -> None:
        """The ``limit`` latest events; then, every ``interval`` s, what changed."""
        self.show(self.page(limit)[0])
        if interval is None:
            return
        while True:
            time.sleep(interval)
            try:
                changed = self.fresh()
            except CliError as exc:
                if exc.code != CONNECT:
                    raise
                print(f"hookline: {exc.message}; retrying", file=sys.stderr, flush=True)
                continue
            self.show(changed)
            if len(self.seen) > 10 * TAIL_PAGE * TAIL_PAGES:  # forget the oldest
                for key in list(self.seen)[: len(self.seen) // 2]:
                    del self.seen[key]
