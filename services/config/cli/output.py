"""What a command prints: raw JSON (``--json``) or plain-text tables drawn by rich.

Every table, the key/value views included, goes through :func:`table`, driven by
:class:`Column` specs.  Tables are rendered at their natural width whatever the
terminal's: ids and URLs are never wrapped or cut, so they can be copied and a
script can split a row on whitespace.  Cells are :class:`rich.text.Text`, never
markup, and control characters are replaced by a space.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

# C0, DEL, C1 (\x9b starts an escape sequence too), line/paragraph separators and the
# bidirectional overrides: kept out of table cells, so a value cannot redraw the screen.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

Item = Mapping[str, Any]
Getter = Callable[[Item], Any]


def cell(value: Any) -> str:
    """One value as a single line of text; ``-`` for a missing one."""
    if value is None:
        return "-"
    if not isinstance(value, str):
        value = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return CONTROL.sub(" ", value)


def short(text: Any, limit: int = 60) -> Any:
    if isinstance(text, str) and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def dig(item: Item, path: str) -> Any:
    """``item["a"]["b"]`` for ``"a.b"``; None where a level is missing."""
    value: Any = item
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class Column:
    """A table column: its header, and the item's value to show (a dotted key or a
    function of the item).  ``width`` is a minimum, so rows printed one at a time
    (``events tail``) stay under their header."""

    header: str
    value: str | Getter
    right: bool = False
    width: int | None = None

    def of(self, item: Item) -> Any:
        return dig(item, self.value) if isinstance(self.value, str) else self.value(item)


S = TypeVar("S", Column, tuple[str, str | Getter])


def of_model(model: type[msgspec.Struct], *specs: S) -> tuple[S, ...]:
    """Columns (or ``pairs`` rows) that show items of the API's ``model``: every dotted key
    must start with one of the model's fields, so a field the API renames fails the CLI's
    tests (and its import), not a user's screen."""
    names = {f.encode_name for f in msgspec.structs.fields(model)}
    for spec in specs:
        key = spec.value if isinstance(spec, Column) else spec[1]
        if isinstance(key, str) and key.split(".", 1)[0] not in names:
            raise TypeError(f"{key!r} is not a field of the API's {model.__name__}")
    return specs


def table(columns: Sequence[Column], items: Iterable[Item], header: bool = True) -> str:
    """Columns two spaces apart, no borders, no trailing spaces."""
    grid = Table(box=None, show_header=header, header_style="", pad_edge=False, padding=(0, 1))
    for c in columns:
        justify: JustifyMethod = "right" if c.right else "left"
        grid.add_column(c.header, justify=justify, min_width=c.width, no_wrap=True)
    for item in items:
        grid.add_row(*(Text(cell(c.of(item))) for c in columns))
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=1_000_000,  # the natural width: never wrap or truncate a cell
        force_terminal=False,  # plain text, whatever FORCE_COLOR or TERM say
        color_system=None,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(grid)
    text = buffer.getvalue()
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))


def pairs(fields: Sequence[tuple[str, str | Getter]], item: Item) -> str:
    """One item as ``label  value`` lines (a table without header)."""
    rows = [{"label": label, "value": Column(label, get).of(item)} for label, get in fields]
    return table((Column("", "label"), Column("", "value")), rows, header=False)


def dumps(data: Any, indent: int | None = 2) -> str:
    return json.dumps(data, indent=indent, ensure_ascii=False)


@dataclass
class Output:
    """``--json`` or not; where every command prints its result."""

    json: bool = False

    def emit(self, data: Any, human: Callable[[Any], str]) -> None:
        print(dumps(data) if self.json else human(data))
