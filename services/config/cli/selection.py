"""The selection options ``events list`` and ``bulk-replay start`` share: ``--where
FIELD=VALUE`` (search by value), ``--after`` and ``--before-time`` (a time range).

FIELD is ``body.<path>``, ``headers.<name>`` or ``custom_variables.<name>``, the
paths of the log's search (``libs.domain.paths``: ``body.items[0].sku``,
``body["a.b"]``); a malformed one is refused as the options are parsed (exit 2),
before any request.  The list sends each as the query parameter ``FIELD=VALUE``; a
bulk replay nests them as its body's selection (:func:`nested`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from libs.domain import paths, search
from services.config.cli.errors import USAGE, CliError

FIELDS_HELP = "body.<path>, headers.<name> or custom_variables.<name>"


@dataclass(frozen=True)
class Where:
    """One ``--where``: ``name`` as given (``body.customer.region``), its field, the
    keys of its path (list positions dropped, as the search ignores them), the value."""

    name: str
    field: str
    keys: tuple[str, ...]
    value: str

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


def parse_where(text: str) -> Where:
    """``FIELD=VALUE`` as a :class:`Where`; ``typer.BadParameter`` (exit 2) otherwise."""
    name, equals, value = text.partition("=")
    if not equals:
        raise typer.BadParameter(f"{text!r}: give FIELD=VALUE, e.g. body.order.id=42")
    field, dot, path = name.partition(".")
    if field not in search.FIELDS or not dot or not path:
        raise typer.BadParameter(f"{text!r}: FIELD is {FIELDS_HELP}")
    try:
        parts = paths.parse(path)
    except paths.PathError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None
    keys = tuple(p for p in parts if isinstance(p, str))
    if not keys:
        raise typer.BadParameter(f"{text!r}: FIELD is {FIELDS_HELP}")
    if field == "headers":  # header names are case-insensitive
        keys = tuple(k.lower() for k in keys)
    return Where(name, field, keys, value)


def nested(wheres: list[Where]) -> dict[str, dict[str, Any]]:
    """The ``--where``s as a bulk replay's selection, per field, nested as in the
    payload: ``body.customer.region=eu`` is ``{"body": {"customer": {"region": "eu"}}}``;
    the same path given again is any of its values (``[a, b]``).  A path that is both a
    value and the parent of another is a usage error."""
    out: dict[str, dict[str, Any]] = {}
    for where in wheres:
        node = out.setdefault(where.field, {})
        *parents, leaf = where.keys
        for i, key in enumerate(parents):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise _clash(where, where.keys[: i + 1])
            node = child
        if leaf not in node:
            node[leaf] = where.value
            continue
        given = node[leaf]
        if isinstance(given, dict):
            raise _clash(where, where.keys)
        values = given if isinstance(given, list) else [given]
        if where.value not in values:
            values.append(where.value)
        node[leaf] = values if len(values) > 1 else values[0]
    return out


def _clash(where: Where, keys: tuple[str, ...]) -> CliError:
    at = ".".join((where.field, *keys))
    return CliError(USAGE, f"--where {where}: {at} is given both a value and a path below it")


def query_of(wheres: list[Where]) -> dict[str, list[str]]:
    """The ``--where``s as the list's query parameters (a name given twice: both)."""
    query: dict[str, list[str]] = {}
    for where in wheres:
        query.setdefault(where.name, []).append(where.value)
    return query


def where_option(repeated: str) -> Any:
    """The ``--where`` option; ``repeated`` says what giving it again means."""
    return typer.Option(
        "--where",
        metavar="FIELD=VALUE",
        parser=parse_where,
        show_default=False,
        help=f"only events with VALUE at FIELD: {FIELDS_HELP}; values compared as text, "
        f"list positions ignored; repeatable: {repeated}",
    )


WhereOption = Annotated[list[Where] | None, where_option("all must hold")]

AfterOption = Annotated[
    str | None,
    typer.Option(
        "--after", metavar="ISO", show_default=False, help="only events received since (ISO 8601)"
    ),
]
BeforeTimeOption = Annotated[
    str | None,
    typer.Option(
        "--before-time",
        metavar="ISO",
        show_default=False,
        help="only events received before (ISO 8601)",
    ),
]
