"""Attribute paths: ``body.items[0].sku``, ``headers.x-shop-id``, ``custom_variables.value``.

One grammar for filters, mappings, structure fields and the attribute listing:
dot-separated keys (any character but ``.`` and ``[``), each optionally followed by
``[n]`` list indexes.  Keys that contain dots can be written ``body["a.b"]``.
"""

from __future__ import annotations

import re
from typing import Any

_MISSING = object()
_TOKEN = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|\.?([^.\[\]]+)')


class PathError(ValueError):
    """A path that does not parse."""


def parse(path: str) -> list[str | int]:
    """Split a path into keys (str) and list indexes (int)."""
    if not path or path.strip() != path:
        raise PathError(f"invalid attribute path {path!r}")
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            raise PathError(f"invalid attribute path {path!r} at offset {pos}")
        quoted, index, key = m.groups()
        if index is not None:
            parts.append(int(index))
        elif quoted is not None:
            parts.append(quoted.replace('\\"', '"'))
        else:
            parts.append(key)
        pos = m.end()
    return parts


def join(parts: list[str | int]) -> str:
    """The inverse of :func:`parse` (quotes keys that need it)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part or "[" in part or "]" in part or not part:
            out += '["' + part.replace('"', '\\"') + '"]'
        else:
            out += ("." if out else "") + part
    return out


def resolve(data: Any, path: str, default: Any = None) -> Any:
    """The value at ``path`` in ``data``, or ``default`` when any step is missing."""
    value = lookup(data, path)
    return default if value is _MISSING else value


def exists(data: Any, path: str) -> bool:
    return lookup(data, path) is not _MISSING


def lookup(data: Any, path: str) -> Any:
    """The value at ``path`` or the private ``MISSING`` sentinel (see :func:`exists`)."""
    current = data
    for part in parse(path):
        if isinstance(part, int):
            if isinstance(current, list) and -len(current) <= part < len(current):
                current = current[part]
                continue
            return _MISSING
        if isinstance(current, dict) and part in current:
            current = current[part]
            continue
        return _MISSING
    return current


MISSING = _MISSING
