"""Turning an HTTP request's body into an event body: pure functions, no I/O.

The raw bytes are the record (kept with the event whatever happens here); this module
says what Hookline understands on top of them: JSON (any value, exact: see
``libs.domain.jsonvalue``), form url-encoded, multipart form fields (file parts kept as name,
type and size), text in a declared or UTF-8 charset.  A body it cannot read as any of
these (an image, protobuf, bytes in no charset) is kept raw with ``body`` null.
Every bound is counted in input bytes or items, so cost stays proportional to size.
"""

from __future__ import annotations

import codecs
from typing import Any, Final
from urllib.parse import parse_qsl

import multipart

from libs.domain import jsonvalue


class BadRequest(Exception):
    """A request Hookline refuses, with the HTTP status and error code to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


MAX_FIELDS: Final = 10_000  # form fields, query parameters and multipart parts
MAX_PART_HEADER_BYTES: Final = 4_096

TEXT_TYPES = ("text/", "application/xml", "application/javascript")
# Charsets a body may declare: text encodings senders use.  Python's codec registry
# also has codecs that are not charsets at all (``zlib_codec``, ``rot13``) or that
# can smuggle markup (``utf-7``); those are refused by name.
CHARSETS: Final = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "ascii", "latin-1",
        "iso-8859-2", "iso-8859-15", "cp1250", "cp1251", "cp1252", "koi8-r",
        "shift_jis", "euc-jp", "iso-2022-jp", "gb2312", "gbk", "gb18030", "big5",
        "euc-kr",
    )
)  # fmt: skip


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def query_variables(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query string → ``custom_variables``: one value stays a string, repeats become a
    list (appended in place: linear in the number of pairs)."""
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for key, value in pairs:
        if key not in out:
            out[key] = value
        elif key in repeated:
            out[key].append(value)
        else:
            out[key] = [out[key], value]
            repeated.add(key)
    return out


def parse_query(query: str) -> dict[str, Any]:
    return query_variables(_pairs(query, "utf-8"))


def charset_of(declared: str | None) -> str | None:
    """The declared charset's codec name, or BadRequest if it is not allowed."""
    if not declared:
        return None
    try:
        name = codecs.lookup(declared.strip().strip('"')).name
    except LookupError:
        name = ""
    if name not in CHARSETS:
        raise BadRequest(
            400,
            "unsupported_charset",
            f"charset {declared!r} is not supported; use UTF-8 or one of {sorted(CHARSETS)}",
        )
    return name


def parse_request(content_type: str | None, raw: bytes) -> Any:
    """The body of a request with this Content-Type header (None: absent)."""
    params: dict[str, str] = {}
    if content_type is not None:
        _, params = multipart.parse_options_header(content_type)
    return parse_body(content_type, raw, params.get("charset"), params.get("boundary"))


def parse_body(
    content_type: str | None, raw: bytes, charset: str | None = None, boundary: str | None = None
) -> Any:
    """The body as the event's JSON value (None: nothing Hookline can read, kept raw).

    ``content_type`` is the header as sent (None when absent), ``charset`` and
    ``boundary`` its parameters."""
    charset = charset_of(charset)
    media = media_type(content_type)
    if not raw.strip() and media != "multipart/form-data":
        return None
    if is_json(media):
        return _json(raw, charset)
    if media == "application/x-www-form-urlencoded":
        return query_variables(_pairs(_text(raw, charset), charset or "utf-8"))
    if media == "multipart/form-data":
        return _multipart(raw, boundary, charset)
    if content_type is None:
        # No content type: a sender that forgot it; JSON if it is JSON, else text.
        try:
            return jsonvalue.loads(raw)
        except jsonvalue.JsonError:
            return _maybe_text(raw, charset)
    if media.startswith(TEXT_TYPES):
        return _text(raw, charset)
    return _maybe_text(raw, charset)


def _json(raw: bytes, charset: str | None) -> Any:
    if charset not in (None, "utf-8"):  # JSON is UTF-8 (RFC 8259); a sender said otherwise
        raw = _text(raw, charset).encode("utf-8", "surrogatepass")
    try:
        return jsonvalue.loads(raw)
    except jsonvalue.JsonError as exc:
        raise BadRequest(exc.status, exc.code, exc.message) from None


def _pairs(text: str, charset: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            text, keep_blank_values=True, encoding=charset, errors="replace",
            max_num_fields=MAX_FIELDS,
        )  # fmt: skip
    except ValueError:
        raise _too_many() from None


def _too_many() -> BadRequest:
    return BadRequest(
        413, "too_many_fields", f"body has more than the limit of {MAX_FIELDS} fields"
    )


def _text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8")
    except UnicodeDecodeError:
        raise BadRequest(
            400, "invalid_encoding", f"body is not valid text in {charset or 'utf-8'}"
        ) from None


def _maybe_text(raw: bytes, charset: str | None) -> str | None:
    """Text in the declared charset, or UTF-8; otherwise binary (None: kept raw only)."""
    if charset is not None:
        return _text(raw, charset)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _multipart(raw: bytes, boundary: str | None, charset: str | None) -> dict[str, Any]:
    """Form fields as text, file parts as ``{"filename", "content_type", "size"}``."""
    if not boundary:
        raise BadRequest(400, "invalid_multipart", "multipart body without a boundary")
    pairs: list[tuple[str, Any]] = []
    try:
        with multipart.PushMultipartParser(
            boundary,
            content_length=len(raw),
            max_header_size=MAX_PART_HEADER_BYTES,
            max_segment_count=MAX_FIELDS,
        ) as parser:
            part: multipart.MultipartSegment | None = None
            data: list[bytes] = []
            for event in parser.parse(raw):
                if isinstance(event, multipart.MultipartSegment):
                    part, data = event, []
                elif event is None and part is not None:
                    pairs.append((part.name, _part_value(part, b"".join(data), charset)))
                    part = None
                elif isinstance(event, bytes | bytearray):
                    data.append(bytes(event))
            for event in parser.parse(b""):  # end of input: an unfinished body is an error
                if event is None and part is not None:  # pragma: no cover - finished above
                    pairs.append((part.name, _part_value(part, b"".join(data), charset)))
    except multipart.ParserLimitReached:
        raise _too_many() from None
    except multipart.MultipartError as exc:
        raise BadRequest(400, "invalid_multipart", f"malformed multipart body: {exc}") from None
    return query_variables(pairs)


def _part_value(part: multipart.MultipartSegment, data: bytes, charset: str | None) -> Any:
    if part.filename is not None:
        return {"filename": part.filename, "content_type": part.content_type, "size": len(data)}
    part_charset = part.charset if part.charset and part.charset != "utf8" else None
    try:
        name = charset_of(part_charset) or charset or "utf-8"
    except BadRequest:
        name = "utf-8"
    return data.decode(name, errors="replace")
