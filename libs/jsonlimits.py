"""What JSON may hold and still be stored: MongoDB (BSON) keeps integers in 64 bits.

A body with a larger integer is valid JSON but cannot be logged, so it is refused at
the door with a clear 4xx instead of being acknowledged and then failing forever in
the projection.  The check walks the value only when the raw text has a long digit
run, so ordinary bodies pay one regex scan.
"""

from __future__ import annotations

import re
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LONG_DIGITS = re.compile(rb"\d{19,}")


def oversized_int_path(value: Any, raw: bytes | None = None) -> str | None:
    """The path of the first integer outside int64, or None."""
    if raw is not None and not _LONG_DIGITS.search(raw):
        return None
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                return path
        elif isinstance(item, dict):
            stack.extend((f"{path}.{k}", v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
    return None
