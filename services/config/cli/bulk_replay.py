"""``hookline bulk-replay``: run again the logged events a selection picks (start, with
``--plan`` only counted), follow a job (show, ``start --wait``), cancel it, list them.

The selection is the API's :class:`~services.config.models.BulkReplay`: a status
(failed, dead_lettered or any), a time range and ``--where`` values, nested as in the
payload (``--where body.customer.region=eu`` selects ``{"body": {"customer": {"region":
"eu"}}}``; the same path given twice is any of its values).
"""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import Annotated, Any, cast

import msgspec
import typer

from services.config import models
from services.config.cli.client import Client, connector, segment
from services.config.cli.errors import CONNECT, USAGE, CliError
from services.config.cli.output import Column, Getter, Item, of_model, pairs, table
from services.config.cli.selection import (
    AfterOption,
    BeforeTimeOption,
    Where,
    nested,
    where_option,
)
from services.config.cli.session import ConnectorId, Session, command

JOBS = "/api/v1/bulk-replays"

app = typer.Typer(help="replay many logged events: start, show, cancel, list", no_args_is_help=True)


class Status(StrEnum):
    """The statuses a bulk replay selects by (``models.BulkReplay.status``)."""

    failed = "failed"
    dead_lettered = "dead_lettered"
    any = "any"


JobId = Annotated[str, typer.Argument(metavar="JOB_ID", show_default=False)]


def job_path(job_id: str) -> str:
    return f"{JOBS}/{segment(job_id)}"


def _progress(j: Item) -> str:
    return f"{j.get('done')}/{j.get('matched')}"


def _rate(j: Item) -> Any:
    rate = j.get("rate_per_s")
    return f"{rate:g}/s" if isinstance(rate, float | int) else rate


JOB: tuple[tuple[str, str | Getter], ...] = of_model(
    models.BulkReplayJob,
    ("id", "id"),
    ("connector", "connector_id"),
    ("state", "state"),
    ("done", _progress),  # done/matched
    ("skipped", "skipped"),
    ("version", "version"),
    ("rate", _rate),
    ("created", "created_at"),
    ("finished", "finished_at"),
    ("error", "error"),
    ("selection", "selection"),
)
LISTED = of_model(
    models.BulkReplayJob,
    Column("ID", "id"),
    Column("STATE", "state"),
    Column("DONE", "done", right=True),
    Column("MATCHED", "matched", right=True),
    Column("CREATED", "created_at"),
)


def events(n: Any) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def progress_line(j: Item) -> str:
    """``running: 3/10 replayed``, and what was skipped, and the job's error."""
    line = f"{j.get('state')}: {_progress(j)} replayed"
    if j.get("skipped"):
        line += f", {j['skipped']} skipped"
    if j.get("error"):
        line += f" ({j['error']})"
    return line


@command(app, "start", "replay the connector's logged events a selection picks")
def start(
    s: Session,
    cid: ConnectorId,
    status: Annotated[
        Status, typer.Option(help="the events' status: failed, dead_lettered or any")
    ] = Status.failed,
    after: AfterOption = None,
    before_time: BeforeTimeOption = None,
    where: Annotated[
        list[Where] | None, where_option("all must hold, the same FIELD twice: any of them")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="against this kept version (default: the current)"),
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="only count the events it would replay")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the job until it is done or cancelled")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, max=3600, metavar="S", help="with --wait: poll every S s")
    ] = 1.0,
) -> None:
    """Count (--plan) or start the replay of what the selection picks; the same --where
    path given twice is any of its values, different ones must all hold."""
    if plan and wait:
        raise CliError(USAGE, "--plan only counts: there is no job to --wait for")
    selection = nested(where or [])
    unset: Any = msgspec.UNSET
    body = models.BulkReplay(
        status=cast(Any, status.value),
        received_after=after if after is not None else unset,
        received_before=before_time if before_time is not None else unset,
        body=selection.get("body", unset),
        headers=selection.get("headers", unset),
        custom_variables=selection.get("custom_variables", unset),
        version=version if version is not None else unset,
        plan=plan,
    )
    answer = s.api.call("POST", connector(cid) + "/bulk-replay", body)
    if plan:
        n = answer["matched"]
        s.out.emit(answer, lambda _: f"{events(n)} {'matches' if n == 1 else 'match'}")
        return
    if not wait:
        s.out.emit(answer, started_text)
        return
    if not s.out.json:
        print(started_text(answer), flush=True)
    try:
        job = follow(s.api, answer["id"], interval, show=not s.out.json)
    except KeyboardInterrupt:
        job_id = answer["id"]
        print(
            f"hookline: bulk replay {job_id} goes on (hookline bulk-replay show {job_id}; "
            f"hookline bulk-replay cancel {job_id})",
            file=sys.stderr,
        )
        raise
    if s.out.json:
        s.out.emit(job, progress_line)


def started_text(a: Item) -> str:
    return f"bulk replay {a['id']}: {events(a['matched'])}, running"


def follow(api: Client, job_id: str, interval: float, show: bool) -> Any:
    """Poll the job every ``interval`` s until it is no longer running; print each new
    progress line (``show``); the job as last read."""
    last = None
    while True:
        try:
            job = api.call("GET", job_path(job_id))
        except CliError as exc:
            if exc.code != CONNECT:
                raise
            print(f"hookline: {exc.message}; retrying", file=sys.stderr, flush=True)
        else:
            line = progress_line(job)
            if show and line != last:
                print(line, flush=True)
                last = line
            if job.get("state") != "running":
                return job
        time.sleep(interval)


@command(app, "show", "a bulk replay's state and progress")
def show(s: Session, job_id: JobId) -> None:
    s.out.emit(s.api.call("GET", job_path(job_id)), lambda j: pairs(JOB, j))


@command(app, "cancel", "stop a bulk replay (what it replayed stays)")
def cancel(s: Session, job_id: JobId) -> None:
    def text(j: Item) -> str:
        if j.get("state") == "cancelled":
            return f"cancelled bulk replay {j['id']}: {_progress(j)} replayed"
        return f"bulk replay {j['id']} was already {j.get('state')}: {_progress(j)} replayed"

    s.out.emit(s.api.call("DELETE", job_path(job_id)), text)


@command(app, "list", "the connector's bulk replays, newest first (the last 50)")
def list_(s: Session, cid: ConnectorId) -> None:
    data = s.api.call("GET", connector(cid) + "/bulk-replays")
    s.out.emit(data, lambda d: table(LISTED, d["items"]))
