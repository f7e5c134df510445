"""``hookline connectors``: create, list, show, update, delete, rotate-url, versions,
restore, pause, resume."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from services.config import models
from services.config.cli.client import connector
from services.config.cli.errors import USAGE, CliError
from services.config.cli.output import Column, Item, dumps, of_model, pairs, table
from services.config.cli.session import ConnectorId, Session, command

app = typer.Typer(
    help="create, list, show, update, delete, rotate-url, versions, restore, pause, resume",
    no_args_is_help=True,
)


CONNECTOR = of_model(
    models.Connector,
    ("id", "id"),
    ("name", "name"),
    ("url", "url"),
    ("version", "version"),
    ("paused", "paused"),
    ("created", "created_at"),
    ("updated", "updated_at"),
)
LISTED = of_model(
    models.Connector,
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("VERSION", "version", right=True),
    Column("UPDATED", "updated_at"),
    Column("URL", "url"),
)


def _config_of(v: Item) -> Item:
    config = v.get("config")
    return config if isinstance(config, dict) else {}


VERSIONS = of_model(
    models.Version,
    Column("VERSION", "version", right=True),
    Column("SAVED", "saved_at"),
    Column("STEPS", lambda v: len(_config_of(v).get("steps") or []), right=True),
    Column("MAPPING", lambda v: "yes" if _config_of(v).get("mapping") else "no"),
)


def connector_text(c: Item, with_config: bool = False) -> str:
    text = pairs(CONNECTOR, c)
    if with_config:
        text += "\nconfig:\n" + dumps(c.get("config"))
    return text


def read_config(name: str) -> Any:
    """The configuration in FILE (``-``: stdin): the config object itself, JSON."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(USAGE, f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(USAGE, f"{name} is not JSON: {exc}") from None


@command(app, "create", "create a connector")
def create(
    s: Session,
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    config: Annotated[
        str | None, typer.Option(metavar="FILE", help="its configuration (JSON; - for stdin)")
    ] = None,
) -> None:
    body: dict[str, Any] = {"name": name}
    if config:
        body["config"] = read_config(config)
    s.out.emit(s.api.call("POST", "/api/v1/connectors", body), connector_text)


@command(app, "list", "list connectors")
def list_(s: Session) -> None:
    s.out.emit(s.api.call("GET", "/api/v1/connectors"), lambda d: table(LISTED, d["items"]))


@command(app, "show", "show a connector and its configuration")
def show(s: Session, cid: ConnectorId) -> None:
    s.out.emit(s.api.call("GET", connector(cid)), lambda c: connector_text(c, True))


@command(app, "update", "save a new configuration (a new version)")
def update(
    s: Session,
    cid: ConnectorId,
    config: Annotated[str, typer.Option(metavar="FILE", help="JSON; - for stdin")],
    name: Annotated[str | None, typer.Option(metavar="NAME", help="rename it too")] = None,
    version: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="the version this save is based on (default: the current one; "
            "a stale one is refused)",
        ),
    ] = None,
) -> None:
    """Save a new configuration, based on the version read just before (or --version)."""
    if version is None:
        version = s.api.call("GET", connector(cid))["version"]
    body: dict[str, Any] = {"version": version, "config": read_config(config)}
    if name:
        body["name"] = name
    s.out.emit(s.api.call("PUT", connector(cid), body), connector_text)


@command(app, "delete", "delete a connector")
def delete(s: Session, cid: ConnectorId) -> None:
    s.api.call("DELETE", connector(cid))
    s.out.emit({"deleted": cid}, lambda d: f"deleted connector {d['deleted']}")


@command(app, "rotate-url", "generate a new connecting URL")
def rotate_url(
    s: Session,
    cid: ConnectorId,
    grace: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="keep the old URL working this long (default: it dies now)",
        ),
    ] = None,
) -> None:
    body = models.RotateUrl(grace_seconds=grace) if grace is not None else None
    when = f"in {grace} s" if grace else "now"
    s.out.emit(
        s.api.call("POST", connector(cid) + "/rotate-url", body),
        lambda c: f"new url: {c['url']}\n(the old url stops working {when})",
    )


@command(app, "versions", "list the kept versions, newest first")
def versions(s: Session, cid: ConnectorId) -> None:
    data = s.api.call("GET", connector(cid) + "/versions")
    s.out.emit(data, lambda d: table(VERSIONS, d["items"]))


@command(app, "restore", "restore version N (as a new version)")
def restore(
    s: Session,
    cid: ConnectorId,
    n: Annotated[int, typer.Argument(min=1, metavar="N", show_default=False)],
) -> None:
    saved = s.api.call("POST", f"{connector(cid)}/versions/{n}/restore")
    s.out.emit(saved, lambda c: f"restored version {n} as version {c['version']}")


def _paused_text(what: str, then: str) -> Callable[[Item], str]:
    return lambda c: f"{what} {c['name']} ({c['id']}): {then}"


@command(app, "pause", "hold the connector's steps (events are still stored and answered)")
def pause(s: Session, cid: ConnectorId) -> None:
    s.out.emit(
        s.api.call("POST", connector(cid) + "/pause"),
        _paused_text("paused", "events are stored and answered; steps wait"),
    )


@command(app, "resume", "run the held events, in arrival order, then new ones")
def resume(s: Session, cid: ConnectorId) -> None:
    s.out.emit(
        s.api.call("POST", connector(cid) + "/resume"),
        _paused_text("resumed", "held events run in arrival order"),
    )
