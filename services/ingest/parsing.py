"""Turning an HTTP request's parts into an event body: pure functions, no I/O."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec

from libs.jsonlimits import oversized_int_path


class BadRequest(Exception):
    """A request Hookline refuses, with the HTTP status and error code to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


_json = msgspec.json.Decoder()

TEXT_TYPES = ("text/", "application/xml", "application/javascript")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def query_variables(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query string → ``custom_variables``: one value stays a string, repeats become a list."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            existing = out[key]
            out[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[key] = value
    return out


def parse_body(media: str, raw: bytes, charset: str | None = None) -> Any:
    """The body as the event's JSON value. Multipart is parsed by the adapter (streamed)."""
    if not raw.strip():
        return None
    if is_json(media):
        try:
            value = _json.decode(raw)
        except msgspec.DecodeError as exc:
            raise BadRequest(400, "invalid_json", f"body is not valid JSON: {exc}") from None
        _check_ints(value, raw)
        return value
    if media != "application/x-www-form-urlencoded" and not (
        media == "" or media.startswith(TEXT_TYPES)
    ):
        raise BadRequest(
            415,
            "unsupported_media_type",
            f"content type {media!r} is not supported: send JSON, a form, multipart "
            "form fields or text",
        )
    text = _text(raw, charset)
    if media == "application/x-www-form-urlencoded":
        return query_variables(parse_qsl(text, keep_blank_values=True))
    if media == "":
        # No content type: a sender that forgot it; try JSON first, else keep the text.
        try:
            value = _json.decode(raw)
        except msgspec.DecodeError:
            return text
        _check_ints(value, raw)
        return value
    return text


def _check_ints(value: Any, raw: bytes) -> None:
    path = oversized_int_path(value, raw)
    if path is not None:
        raise BadRequest(
            400,
            "number_out_of_range",
            f"integer at {path} does not fit in 64 bits; send it as a string",
        )


def _text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(400, "invalid_encoding", "body is not valid text in its charset") from None
