"""JSON values as senders send them: decoded exactly, within documented bounds.

One policy for every JSON text Hookline reads from outside or from its own streams:

- integers of any size stay exact Python ints (msgspec decodes up to 64 bits; a text
  with a larger one is decoded again by the standard library, which is exact and,
  since it happens only for such texts, costs nothing on the usual path);
- floats are IEEE doubles; one that overflows a double (``1e400``) is refused with
  its path, as ``NaN`` and ``Infinity`` are (not JSON);
- keys and strings are any Unicode (``$``, ``.``, NUL, empty), but not lone
  surrogates, which no UTF-8 store can hold;
- a UTF-8 byte order mark before the value is skipped (the raw bytes keep it);
- nesting, object sizes, array lengths and key lengths are bounded (``BOUNDS``), so
  that a body that decodes is one every later stage (BSON's nesting, the structure,
  templates) can take.  Past a bound: :class:`JsonError` naming it, never a crash.

How these values are written to MongoDB is the Mongo adapter's business
(``libs.infra.mongo.codec``); this module knows nothing of storage.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")


class Bounds(msgspec.Struct, frozen=True):
    depth: int = 64  # nested arrays/objects; BSON stores ~100 and the log wraps the body
    members: int = 10_000  # keys in one object
    items: int = 100_000  # items in one array
    key_chars: int = 1_024  # characters in one key


BOUNDS: Final = Bounds()


class JsonError(Exception):
    """A JSON text Hookline refuses: ``status`` 400, ``code`` and a message a sender
    can act on (the path and the bound)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.status = 400
        self.code = code
        self.message = message


_BOM = b"\xef\xbb\xbf"
_any = msgspec.json.Decoder()
_check_text = msgspec.json.Encoder().encode  # refuses lone surrogates


def _no_constants(name: str) -> Any:
    raise JsonError("invalid_json", f"body is not valid JSON: {name} is not a JSON value")


def _exact(text: bytes) -> Any:
    """The standard library's decoder: exact big integers, slower; checked after."""
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # JSONDecodeError, or a too-long integer literal
        raise JsonError("invalid_json", f"body is not valid JSON: {exc}") from None
    try:
        _check_text(value)
    except (msgspec.EncodeError, UnicodeEncodeError, ValueError, RecursionError):
        raise JsonError(
            "invalid_json", "body is not valid JSON: a string holds a lone surrogate"
        ) from None
    return value


def _too_deep() -> JsonError:
    return JsonError(
        "too_deep", f"body nests arrays/objects deeper than the limit of {BOUNDS.depth}"
    )


def loads(raw: bytes, bounds: Bounds = BOUNDS) -> Any:
    """Decode a webhook's JSON body exactly, within ``bounds``; raises JsonError."""
    text = raw[3:] if raw.startswith(_BOM) else raw
    try:
        value = _any.decode(text)
    except msgspec.ValidationError:
        # Only "Number out of range": an integer beyond 64 bits or a float beyond a
        # double.  The exact decoder tells which; an overflowing float is refused below.
        value = _exact(text)
        check(value, None, bounds)
        return value
    except msgspec.DecodeError as exc:
        raise JsonError("invalid_json", f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    check(value, text, bounds)
    return value


def _check_container(
    size: int, depth: int, bounds: Bounds, limit: int, path: str, kind: Literal["object", "array"]
) -> None:
    """An object's or an array's depth and size against the bounds."""
    if depth > bounds.depth:
        raise _too_deep()
    if size > limit:
        code, unit = (
            ("too_many_members", "keys") if kind == "object" else ("too_many_items", "items")
        )
        raise JsonError(code, f"{kind} at {path} has {size} {unit}, over the limit of {limit}")


def check(value: Any, text: bytes | None = None, bounds: Bounds = BOUNDS) -> None:
    """Raise JsonError if ``value`` is past a bound or holds a non-finite float.

    With the JSON ``text`` that msgspec decoded (so no float overflowed) at hand, the
    walk is skipped when the text cannot hold a violation: fewer brackets than the
    depth bound, fewer colons and commas than the size bounds, no run of characters
    without a quote long enough to be a key past the bound.
    """
    if text is not None and _surely_within(text, bounds):
        return
    stack: list[tuple[Any, int, str]] = [(value, 1, "$")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict):
            _check_container(len(item), depth, bounds, bounds.members, path, "object")
            for key, sub in item.items():
                if len(key) > bounds.key_chars:
                    raise JsonError(
                        "key_too_long",
                        f"a key in the object at {path} is longer than {bounds.key_chars} "
                        "characters",
                    )
                if isinstance(sub, dict | list | float):
                    stack.append((sub, depth + 1, f"{path}.{key}"))
        elif isinstance(item, list):
            _check_container(len(item), depth, bounds, bounds.items, path, "array")
            for i, sub in enumerate(item):
                if isinstance(sub, dict | list | float):
                    stack.append((sub, depth + 1, f"{path}[{i}]"))
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonError(
                "number_out_of_range", f"number at {path} is beyond the range of a double"
            )


_LONG_RUN = re.compile(rb'[^"]{%d,}' % (BOUNDS.key_chars + 1))


def _surely_within(text: bytes, bounds: Bounds) -> bool:
    if bounds != BOUNDS or text.count(b"{") + text.count(b"[") > bounds.depth:
        return False
    if text.count(b":") > bounds.members or text.count(b",") >= bounds.items:
        return False
    if len(text) <= bounds.key_chars:
        return True
    # A key past the bound is a long run without a quote, or holds escaped ones.
    return b'\\"' not in text and _LONG_RUN.search(text) is None


class Decoder(Generic[T]):
    """A typed msgspec decoder for Hookline's own messages, exact for big integers.

    msgspec refuses integers beyond 64 bits; a message holding one (a webhook's
    20-digit id, carried through the streams) is decoded by the standard library and
    converted to the type, which is exact.  The fast path is msgspec's alone.
    """

    def __init__(self, kind: type[T]) -> None:
        self.kind = kind
        self._fast = msgspec.json.Decoder(kind)

    def decode(self, data: bytes | bytearray | memoryview) -> T:
        try:
            return self._fast.decode(data)
        except msgspec.ValidationError as exc:
            if "out of range" not in str(exc):
                raise
        return msgspec.convert(json.loads(bytes(data)), self.kind)


def decode(data: bytes | bytearray | memoryview | str) -> Any:
    """Any JSON text Hookline wrote itself, exact for big integers (no bounds)."""
    try:
        return _any.decode(data)
    except msgspec.ValidationError as exc:
        if "out of range" not in str(exc):
            raise
    return json.loads(data if isinstance(data, str) else bytes(data))


__all__ = ["BOUNDS", "Bounds", "Decoder", "JsonError", "check", "decode", "loads"]
