"""The email action: one message through an SMTP channel (F7, F8).

The ``Message-ID`` is derived from the caller's id, so a retried send carries the same
id as the first attempt and receiving systems can recognise the duplicate.

SMTP replies are classified by their code: 4xx is a temporary refusal (retry), 5xx a
permanent one; a connection that fails or times out is transient.
"""

from __future__ import annotations

import asyncio
import re
import socket
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from typing import Any

import aiosmtplib

from libs.domain.channels import SmtpChannel
from services.executor.errors import PermanentError, StepError, TransientError

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
_NOT_IN_MSG_ID = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


async def send_email(
    channel: SmtpChannel,
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    address: str | None = None,
) -> dict[str, Any]:
    """Send one email; the result names the recipients, the Message-ID and the server reply.

    ``address``, when given, is the IP address the server's name was checked to resolve
    to: the connection goes there (TLS still verifies the certificate for the name).

    ``to`` is one address or several separated by commas (``Name <addr>`` allowed).
    Recipients refused while others were accepted are listed under ``refused``: the
    message went out, so the step succeeds (a retry would send it twice).
    """
    recipients = parse_recipients(to)
    try:
        message = build_message(
            channel,
            recipients=recipients,
            subject=subject,
            text=text,
            html=html,
            message_id=message_id,
        )
    except ValueError as exc:  # e.g. a line break in the channel's From address
        raise PermanentError(f"cannot build the message: {exc}") from None
    addresses = [address for _, address in recipients]
    sock: socket.socket | None = None
    try:
        if address is not None:
            sock = await _connect(address, channel.port, channel.timeout_s)
        refused, reply = await aiosmtplib.send(
            message,
            recipients=addresses,
            hostname=channel.host,
            port=None if sock else channel.port,
            sock=sock,
            username=channel.username,
            password=channel.password,
            use_tls=channel.use_tls,
            start_tls=channel.starttls and not channel.use_tls,
            timeout=channel.timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        temporary = any(_is_temporary(r.code) for r in exc.recipients)
        kind: type[StepError] = TransientError if temporary else PermanentError
        raise kind(f"all recipients refused: {detail}") from None
    except aiosmtplib.SMTPResponseException as exc:  # before SMTPConnectError: a subclass
        kind = TransientError if _is_temporary(exc.code) else PermanentError
        raise kind(f"{_where(channel)} answered {exc.code} {exc.message}") from None
    except (
        aiosmtplib.SMTPConnectError,
        aiosmtplib.SMTPServerDisconnected,
        TimeoutError,
        OSError,
    ) as exc:
        raise TransientError(f"{_where(channel)}: {type(exc).__name__}: {exc}") from None
    except aiosmtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered: set-up
        raise PermanentError(f"{_where(channel)}: {exc}") from None
    except ValueError as exc:  # an address aiosmtplib will not put on the wire
        raise PermanentError(f"invalid address: {exc}") from None
    finally:
        if sock is not None:
            sock.close()  # the transport has closed it already, unless connecting failed
    return {
        "to": addresses,
        "message_id": message["Message-ID"],
        "response": reply,
        "refused": {address: f"{r.code} {r.message}" for address, r in refused.items()},
    }


async def _connect(address: str, port: int, timeout_s: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (address, port)), timeout_s
        )
    except BaseException:
        sock.close()
        raise
    return sock


MAX_RECIPIENTS = 50  # a templated ``to`` from a webhook value cannot mail a crowd


def parse_recipients(to: str) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs, without duplicates; PermanentError if invalid
    or more than MAX_RECIPIENTS."""
    if to.count("@") > MAX_RECIPIENTS * 2:  # before parsing a huge list
        raise PermanentError(f"more than {MAX_RECIPIENTS} recipients")
    pairs = getaddresses([to.strip().strip(",")])
    found: dict[str, tuple[str, str]] = {}
    for name, address in pairs:
        if not _ADDRESS.fullmatch(address):
            raise PermanentError(
                f"invalid recipient {to!r}: expected addresses separated by commas"
            )
        found.setdefault(address.lower(), (name, address))
    if len(found) > MAX_RECIPIENTS:
        raise PermanentError(f"{len(found)} recipients: more than {MAX_RECIPIENTS}")
    return list(found.values())


def build_message(
    channel: SmtpChannel,
    *,
    recipients: list[tuple[str, str]],
    subject: str,
    text: str,
    html: str,
    message_id: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = channel.from_address
    message["To"] = ", ".join(formataddr(pair) for pair in recipients)
    message["Subject"] = re.sub(r"[\r\n]+", " ", subject).strip()
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_message_id(message_id, channel.from_address)
    if html and not text:
        message.set_content(html, subtype="html")
    else:
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
    return message


def make_message_id(message_id: str, from_address: str) -> str:
    """``<id@sender-domain>``: the same for every attempt of one send."""
    left = _NOT_IN_MSG_ID.sub("-", message_id).strip(".") or "message"
    domain = parseaddr(from_address)[1].rpartition("@")[2]
    if not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
        domain = "hookline"
    return f"<{left}@{domain}>"


def _is_temporary(code: int) -> bool:
    return 400 <= code < 500


def _where(channel: SmtpChannel) -> str:
    return f"SMTP {channel.host}:{channel.port}"
