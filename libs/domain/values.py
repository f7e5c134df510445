"""How attribute values read as text and as "empty", the same for filters and formatters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec


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
