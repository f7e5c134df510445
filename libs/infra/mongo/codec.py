"""How JSON values are kept in MongoDB exactly: the one place that knows BSON's limits.

BSON cannot hold everything JSON can.  Its integers stop at 64 bits; field names
must not contain NUL, and ``$``-prefixed or dotted names are refused by updates or
read as paths by queries.  So every document the adapter writes goes through
:func:`to_bson` and every one it reads through :func:`from_bson`:

- a key is escaped when it is empty, starts with ``$`` or holds ``%``, ``.`` or NUL:
  those four characters become ``%25``, ``%2E``, ``%00`` and (leading) ``%24``, and
  the empty key becomes ``%``.  Every other key is stored as it is, so queries on
  ordinary paths (``body.order.id``) keep working; a stored key holds ``%`` only if
  it was escaped, which makes the mapping reversible;
- an integer outside 64 bits is stored as ``{"%int": "<decimal digits>"}`` (no key
  a sender sends can be ``%int``: it would be escaped to ``%25int``);
- what PyMongo hands back as ``bson.Int64`` is a plain ``int`` again.

Everything else (str, float, bool, None, datetime, bytes) passes as it is.
"""

from __future__ import annotations

import re
from typing import Any

from bson.int64 import Int64

from libs.domain.values import INT64_MAX, INT64_MIN

BIG_INT = "%int"

_NEEDS_ESCAPE = re.compile(r"[%.\x00]|^\$|^$")
_ESCAPE = {"%": "%25", ".": "%2E", "\x00": "%00"}
_ESCAPED = re.compile(r"%(25|2E|00|24)")
_UNESCAPE = {"25": "%", "2E": ".", "00": "\x00", "24": "$"}


def escape_key(key: str) -> str:
    if not key:
        return "%"
    if _NEEDS_ESCAPE.search(key) is None:
        return key
    out = "".join(_ESCAPE.get(c, c) for c in key)
    return "%24" + out[1:] if out.startswith("$") else out


def unescape_key(key: str) -> str:
    if "%" not in key:
        return key
    if key == "%":
        return ""
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], key)


def to_bson(value: Any) -> Any:
    """``value`` as MongoDB can store it and :func:`from_bson` gives back."""
    if isinstance(value, dict):
        return {
            (k if _NEEDS_ESCAPE.search(k) is None else escape_key(k)): to_bson(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [to_bson(v) for v in value]
    if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        return {BIG_INT: str(value)}
    return value


def from_bson(value: Any) -> Any:
    """The JSON value a stored one stands for (the inverse of :func:`to_bson`)."""
    if isinstance(value, dict):
        if len(value) == 1 and BIG_INT in value:
            return int(value[BIG_INT])
        return {(k if "%" not in k else unescape_key(k)): from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    if type(value) is Int64:
        return int(value)
    return value


def path(dotted: str) -> str:
    """A query path (``body.a.b``) with each segment escaped as :func:`to_bson` stores it."""
    return ".".join(escape_key(part) for part in dotted.split("."))


__all__ = ["escape_key", "from_bson", "path", "to_bson", "unescape_key"]
