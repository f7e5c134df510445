"""Search of the event log by value (F14): ``body.<path>=v``, ``headers.<name>=v``,
``custom_variables.<name>=v`` and ``status=v``.

An entry carries its *terms*: one short hash per (field, path, value) of its scalar
leaves, so one multikey index answers "which entries have this value at this path"
for any path, whatever the payload's shape, without indexing the payload itself.
A search is the entries that have every asked term.

- Paths are the attribute paths of ``libs.domain.paths``; list positions are
  ignored, so ``body.items.sku=A`` (or ``body.items[0].sku=A``) finds an event with
  ``A`` as the ``sku`` of any item.  Header names are case-insensitive.
- Values are compared as text: ``5`` finds the number 5 and the string ``"5"``; true,
  false and null as JSON spells them.  A number asked for is also matched in its
  canonical form (``1.50`` finds 1.5).
- Transport headers (``Host``, ``Content-Length``, ``Accept-Encoding``…),
  credentials (``Authorization``, ``Cookie``) and signatures (any header named
  ``…signature…`` or ``…hmac…``: a fresh value per event) are not indexed: a search by
  one is refused with a reason.  Each term is an index key written with every entry,
  about 20 us of the database's CPU each (``bench/storecost.py``).
- Bounded: the first ``MAX_TERMS`` leaves, breadth first (shallow fields first); an
  entry with more says so (``terms_truncated``).  The hash is of the whole value, so
  long values are found exactly, and the index holds 8 bytes per term.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from libs.domain import paths

MAX_TERMS = 256
FIELDS = ("body", "headers", "custom_variables")
UNSEARCHED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "accept",
        "accept-encoding",
        "content-encoding",
        "transfer-encoding",
        "te",
        "expect",
        "upgrade",
        "authorization",
        "proxy-authorization",
        "cookie",
    }
)
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_encode = msgspec.json.encode


class SearchError(ValueError):
    """A search parameter that cannot be a search (bad path, unknown field)."""


# A term: the 8 bytes of a hash, stored as BSON binary, which SecantusDB encodes as an
# index key for about half the CPU of an int64 (numbers are normalised through a
# decimal so that 1 and 1.0 sort together; measured 470 vs 750 us per entry). Entries
# logged by the previous release hold a 12-character string (a 9-byte hash of the same
# text, base64): a search asks for both (FORMER_TERMS) until those have expired
# (HOOKLINE_LOG_RETENTION_DAYS).
Term = bytes | str
FORMER_TERMS = True


def _spelled(field: str, keys: tuple[str, ...], value: str) -> str:
    """What is hashed for ``value`` at ``keys`` of ``field`` (as :func:`_leaves` does)."""
    return "\x1f".join((field, *keys)) + "\x00" + value


def text(value: Any) -> str | None:
    """A scalar as search text; None for a container."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _encode(value).decode() if math.isfinite(value) else None
    return None


def _leaves(field: str, value: Any) -> Iterator[str]:
    """The hashed text of every scalar of ``field``'s value, breadth first: its path
    (without list positions) and its text as :func:`_spelled` spells them.  Each path is
    built once per node, by appending to its parent's (the hot loop of the projector)."""
    queue: deque[tuple[str, Any]] = deque([(field, value)])
    while queue:
        path, node = queue.popleft()
        if isinstance(node, dict):
            queue.extend((f"{path}\x1f{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            queue.extend((path, v) for v in node)
        elif isinstance(node, str):
            yield f"{path}\x00{node}"
        else:
            spelled = text(node)
            if spelled is not None:
                yield f"{path}\x00{spelled}"


def _digest(spelled: str) -> bytes:
    return hashlib.blake2b(spelled.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _asked(spelled: str) -> list[Term]:
    """What a search asks for one term: its bytes, and the previous release's string."""
    if not FORMER_TERMS:
        return [_digest(spelled)]
    data = spelled.encode("utf-8", "surrogatepass")
    former = base64.urlsafe_b64encode(hashlib.blake2b(data, digest_size=9).digest())
    return [_digest(spelled), former.decode()]


def event_terms(
    *,
    status: str | None,
    body: Any,
    headers: Mapping[str, str] | None,
    custom_variables: Mapping[str, Any] | None,
) -> tuple[list[bytes], bool]:
    """An entry's terms and whether some leaves were left out (past ``MAX_TERMS``)."""
    terms: dict[bytes, None] = {}  # ordered, unique
    if status:
        terms[status_term(status)] = None
    sources: tuple[tuple[str, Any], ...] = (
        ("headers", _searched(headers or {})),
        ("custom_variables", custom_variables or {}),
        ("body", body),
    )
    truncated = False
    for field, value in sources:
        for spelled in _leaves(field, value):
            if len(terms) >= MAX_TERMS:
                truncated = True
                break
            terms[_digest(spelled)] = None
    return list(terms), truncated


def searched_header(name: str) -> bool:
    """Whether a (lower-case) header name is indexed."""
    return name not in UNSEARCHED_HEADERS and "signature" not in name and "hmac" not in name


def _searched(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = ((k.lower(), v) for k, v in headers.items())
    return {k: v for k, v in lowered if searched_header(k)}


def status_term(status: str) -> bytes:
    """The term an entry with this status holds."""
    return _digest(_spelled("status", (), status))


def condition(name: str, value: str) -> list[Term]:
    """The terms (alternatives) one search parameter matches, e.g. ``body.order.id``
    and ``"42"``.  Raises :class:`SearchError` for a name that is no searchable path."""
    if name == "status":
        return _asked(_spelled("status", (), value))
    field, dot, rest = name.partition(".")
    if field not in FIELDS or not dot or not rest:
        raise SearchError(
            f"{name!r}: search by body.<path>, headers.<name> or custom_variables.<name>"
        )
    try:
        parts = paths.parse(rest)
    except paths.PathError as exc:
        raise SearchError(f"{name!r}: {exc}") from None
    return condition_at(field, tuple(str(p) for p in parts if isinstance(p, str)), value)


def condition_at(field: str, keys: tuple[str, ...], value: str) -> list[Term]:
    """The terms of ``value`` at ``keys`` (no list positions) of ``field``."""
    if field == "headers":
        keys = tuple(k.lower() for k in keys)
        if keys and not searched_header(keys[0]):
            raise SearchError(f"headers.{keys[0]}: not searchable (not indexed)")
    alternatives = {value}
    if _NUMBER.fullmatch(value):
        number: int | float = float(value) if any(c in value for c in ".eE") else int(value)
        canonical = text(number)
        if canonical is not None:
            alternatives.add(canonical)
    return [t for v in sorted(alternatives) for t in _asked(_spelled(field, keys, v))]


def is_condition(name: str) -> bool:
    """Whether a query parameter is a search by value."""
    return name.partition(".")[0] in FIELDS and "." in name
