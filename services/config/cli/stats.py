"""``hookline stats``: show or reset a connector's counters."""

from __future__ import annotations

import typer

from services.config import models
from services.config.cli.client import connector
from services.config.cli.output import Item, pairs
from services.config.cli.session import ConnectorId, Session, command

app = typer.Typer(help="show or reset a connector's counters", no_args_is_help=True)

# The API's counters, in its order: a counter the API adds is shown without a change here.
COUNTERS = tuple((name, name) for name in models.Stats.__struct_fields__)


def stats_text(s: Item) -> str:
    return pairs(COUNTERS, s)


@command(app, "show", "received, succeeded, failed, …; paused and held (waiting) now")
def show(s: Session, cid: ConnectorId) -> None:
    s.out.emit(s.api.call("GET", connector(cid) + "/stats"), stats_text)


@command(app, "reset", "start counting again from now")
def reset(s: Session, cid: ConnectorId) -> None:
    s.out.emit(s.api.call("POST", connector(cid) + "/stats/reset"), stats_text)
