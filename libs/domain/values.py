"""How attribute values read as text and as "empty", the same for filters and formatters;
and the integer range a stored number keeps (MongoDB's int64)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

# The integers MongoDB stores as numbers (int64); beyond them the Mongo codec keeps the
# digits, and the API's version numbers and counters stay inside them.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def as_text(value: Any) -> str:
    """A value as the text a template would show: JSON for lists and objects."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return str(value)


def is_blank(value: Any) -> bool:
    """None, whitespace-only text and empty lists/objects count as empty."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return not value
    return False
