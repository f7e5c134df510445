"""The WhatsApp action: a text or template message through the WhatsApp Cloud API.

``POST {api_base}/{phone_number_id}/messages`` with the channel's bearer token. Failures
are classified by HTTP status (:func:`classify_http_status`); the Graph API's error
message is kept in the exception text.

Private and loopback targets are refused unless the channel allows them: host names
through :class:`GuardedResolver`, IP literals here (aiohttp does not resolve those).
The bearer token only travels over HTTPS, except to a channel that allows private
targets (a local test server).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import phonenumbers

from libs.domain.channels import WhatsAppChannel
from services.executor.adapters.http import (
    MAX_RESPONSE_BYTES,
    GuardedResolver,
    _seconds,
    is_public,
)
from services.executor.errors import PermanentError, TransientError, classify_http_status

MAX_TEXT_CHARS = 4096  # the Cloud API's limit for a text message body


class WhatsAppClient:
    """Two sessions, as in ``HttpClient``: one that refuses private targets (default)
    and one for channels with ``allow_private`` (a local server speaking the Graph API)."""

    def __init__(self, *, timeout_s: float = 15.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._guarded: aiohttp.ClientSession | None = None
        self._open: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._guarded = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(), limit=100)
        )
        self._open = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def close(self) -> None:
        for session in (self._guarded, self._open):
            if session is not None:
                await session.close()
        self._guarded = self._open = None

    async def send(
        self,
        channel: WhatsAppChannel,
        *,
        to: str,
        text: str | None,
        template_name: str | None,
        template_language: str,
        template_params: list[str],
        default_region: str = "US",
    ) -> dict[str, Any]:
        """Send one message: a template when ``template_name`` is set, else ``text``.

        Returns ``{"to": "+E164", "wa_id": ..., "message_id": "wamid...", "status": 200}``.
        """
        number = to_e164(to, default_region)
        body = build_payload(
            number,
            text=text,
            template_name=template_name,
            template_language=template_language,
            template_params=template_params,
        )
        url = messages_url(channel)
        session = self._open if channel.allow_private else self._guarded
        assert session is not None, "WhatsAppClient.start() was not called"
        try:
            async with session.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {channel.access_token}"},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = await response.content.read(MAX_RESPONSE_BYTES)
                retry_after = response.headers.get("Retry-After")
        except PermanentError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, PermanentError) else None
            if cause is not None:
                raise cause from None
            raise TransientError(f"POST {url}: {type(exc).__name__}: {exc}") from None
        answer = _json(raw)
        output = {"status": status, "body": answer}
        kind = classify_http_status(status)
        if kind is not None:
            message = f"WhatsApp API answered {status}: {_graph_error(answer)}"
            if kind is TransientError:
                raise TransientError(message, retry_after_s=_seconds(retry_after), output=output)
            raise kind(message, output=output)
        try:
            message_id = answer["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            # The request was accepted: a retry could deliver the message twice.
            raise PermanentError(
                f"WhatsApp API answered {status} without a message id", output=output
            ) from None
        contacts = answer.get("contacts") or [{}]
        wa_id = contacts[0].get("wa_id") if isinstance(contacts[0], dict) else None
        return {"to": number, "wa_id": wa_id, "message_id": message_id, "status": status}


def to_e164(to: str, default_region: str = "US") -> str:
    """``+14155550100`` from an international or national number; PermanentError if invalid.

    Digits without a ``+`` are tried as a national number of ``default_region`` first,
    then as an international number (the WhatsApp ``wa_id`` form, e.g. ``447911123456``).
    """
    candidates = [to]
    bare = re.sub(r"[\s().-]", "", to)
    if bare.isdigit():
        candidates.append("+" + bare)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise PermanentError(
        f"invalid WhatsApp recipient {to!r}: not a valid phone number "
        f"(international, or national in region {default_region})"
    )


def build_payload(
    e164: str,
    *,
    text: str | None,
    template_name: str | None,
    template_language: str,
    template_params: list[str],
) -> dict[str, Any]:
    """The Cloud API request body for one text or template message."""
    to = e164.lstrip("+")
    if template_name:
        template: dict[str, Any] = {"name": template_name, "language": {"code": template_language}}
        if template_params:
            parameters = [{"type": "text", "text": p} for p in template_params]
            template["components"] = [{"type": "body", "parameters": parameters}]
        return {"messaging_product": "whatsapp", "to": to, "type": "template", "template": template}
    if not text:
        raise PermanentError("nothing to send: the WhatsApp step has neither text nor a template")
    if len(text) > MAX_TEXT_CHARS:
        raise PermanentError(f"text is {len(text)} characters; WhatsApp allows {MAX_TEXT_CHARS}")
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": text},
    }


def messages_url(channel: WhatsAppChannel) -> str:
    """The endpoint, after the checks that need no network: scheme and private IP literals."""
    base = channel.api_base.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"WhatsApp api_base must be an http(s) URL: {base!r}")
    if not channel.allow_private:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None  # a host name: GuardedResolver checks what it resolves to
        if literal is not None and not is_public(str(literal)):
            raise PermanentError(
                f"refused: {parts.hostname} is a private or loopback address; "
                "allow it on the WhatsApp channel (allow_private) to call it"
            )
        if parts.scheme != "https":
            raise PermanentError(f"WhatsApp api_base must use https: {base!r}")
    return f"{base}/{channel.phone_number_id}/messages"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _graph_error(answer: Any) -> str:
    """``message: details (type, code n, subcode m, fbtrace_id x)`` from a Graph error body."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return str(answer)[:500] or "(empty body)"
    text = str(error.get("message") or "(no message)")
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        text += f": {data['details']}"
    labels = {"type": "", "code": "code ", "error_subcode": "subcode ", "fbtrace_id": "fbtrace_id "}
    facts = [f"{label}{error[key]}" for key, label in labels.items() if error.get(key)]
    return f"{text} ({', '.join(facts)})" if facts else text
