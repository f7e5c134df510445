"""Channels (F8): the accounts actions send through, each with a unique id.

Stored by the config service, read by the executor.  Secrets (tokens, passwords)
are never returned whole by the API: see :func:`redacted`.
"""

from __future__ import annotations

from typing import Any

import msgspec


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


def redacted(channel: Channel) -> dict[str, Any]:
    """The channel for display: secrets shown as their last 4 characters only."""
    data: dict[str, Any] = msgspec.to_builtins(channel)
    for name in SECRET_FIELDS:
        if data.get(name):
            data[name] = "…" + str(data[name])[-4:]
    if isinstance(channel, HttpChannel):
        data["headers"] = {k: "…" for k in channel.headers}
    return data
