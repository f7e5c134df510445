"""Comparing JSON values the way "value-exact" means it in tests."""

from __future__ import annotations

from typing import Any


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values, types and key order included (1 ≠ 1.0 ≠ True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
