"""Channels (F8): the accounts actions send through, each with a unique id.

Stored by the config service, read by the executor.  Secrets (tokens, passwords)
are never returned whole by the API: see :func:`redacted`.
"""

from __future__ import annotations

from typing import Any

import msgspec
import yarl

from libs.domain.redaction import redact_secret


class WhatsAppChannel(
    msgspec.Struct, tag="whatsapp", tag_field="type", kw_only=True, forbid_unknown_fields=True
):
    """A WhatsApp Cloud API number: POST {api_base}/{phone_number_id}/messages."""

    id: str
    name: str = ""
    phone_number_id: str
    access_token: str
    api_base: str = "https://graph.facebook.com/v21.0"
    allow_private: bool = False  # only for a local test server speaking the Graph API


class SmtpChannel(
    msgspec.Struct, tag="email", tag_field="type", kw_only=True, forbid_unknown_fields=True
):
    id: str
    name: str = ""
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    from_address: str
    starttls: bool = True
    use_tls: bool = False  # implicit TLS (port 465)
    timeout_s: float = 15.0
    allow_private: bool = False  # a mail server on a private or loopback address


class HttpChannel(
    msgspec.Struct, tag="http", tag_field="type", kw_only=True, forbid_unknown_fields=True
):
    """A base URL and headers (e.g. auth) for HTTP actions; may allow private targets."""

    id: str
    name: str = ""
    base_url: str = ""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    allow_private: bool = False


Channel = WhatsAppChannel | SmtpChannel | HttpChannel
SECRET_FIELDS = ("access_token", "password")


def redact_url(url: str) -> str:
    """A URL without the credentials it may carry: the userinfo's password and every
    query value (``?key=…``), which is where APIs put tokens."""
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return "…"
    if parsed.password is not None:
        parsed = parsed.with_password("…")
    if parsed.query_string:
        parsed = parsed.with_query({k: "…" for k in parsed.query})
    return str(parsed)


def redacted(channel: Channel) -> dict[str, Any]:
    """The channel for display: secrets shown as their last 4 characters only (none of
    a short one), header values never, credentials inside URLs removed."""
    data: dict[str, Any] = msgspec.to_builtins(channel)
    for name in SECRET_FIELDS:
        if data.get(name):
            data[name] = redact_secret(str(data[name]))
    if isinstance(channel, HttpChannel):
        data["headers"] = {k: "…" for k in channel.headers}
        data["base_url"] = redact_url(channel.base_url) if channel.base_url else ""
    if isinstance(channel, WhatsAppChannel):
        data["api_base"] = redact_url(channel.api_base)
    return data
