"""A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, recording what it receives.

The aiosmtpd ``Controller`` runs the server in its own thread with its own event loop,
so the server keeps answering whatever loop (or thread) the test runs in::

    async with smtp_server() as server:
        channel = SmtpChannel(id="c", host=server.host, port=server.port,
                              from_address="noreply@example.com", starttls=False)
        ...
        [mail] = await server.wait_for(1, timeout_s=5)
        assert mail.message["Subject"] == "Hello"
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

REPLIES = {
    550: "550 5.1.1 Recipient address rejected: user unknown",
    451: "451 4.3.0 Temporary failure, try again later",
    452: "452 4.2.2 Mailbox full",
    554: "554 5.7.1 Relay access denied",
}


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpRecorder:
    """The aiosmtpd handler.  Its hooks run in the server thread; state is guarded by one
    ``threading.Condition`` that waiters in any thread (or event loop) can use."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.refused: list[tuple[str, int]] = []  # (recipient, code) refused on purpose
        self.host = "127.0.0.1"
        self.port = 0
        self.require_auth = False  # refuse MAIL before a successful AUTH
        self._rejections: list[int] = []
        self._changed = threading.Condition()

    def reject_next(self, n: int, code: int = 550) -> None:
        """Refuse the next ``n`` recipients (RCPT TO) with ``code`` (550, 451, 452 or 554)."""
        if code not in REPLIES:
            raise ValueError(f"code must be one of {sorted(REPLIES)}")
        with self._changed:
            self._rejections.extend([code] * n)

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedMail]:
        """Wait until ``count`` messages arrived; AssertionError at the deadline.

        Blocks a worker thread on the condition, not the event loop.
        """
        return await asyncio.to_thread(self.wait_for_sync, count, timeout_s)

    def wait_for_sync(self, count: int, timeout_s: float = 5.0) -> list[ReceivedMail]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout_s):
                raise AssertionError(
                    f"SMTP server: {len(self.messages)} of {count} messages after {timeout_s}s"
                )
            return list(self.messages)

    # aiosmtpd hooks (called in the server thread)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._changed:
            code = self._rejections.pop(0) if self._rejections else None
            if code is not None:
                self.refused.append((address, code))
                self._changed.notify_all()
        if code is not None:
            return REPLIES[code]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        mail = ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message)
        with self._changed:
            self.messages.append(mail)
            self._changed.notify_all()
        return "250 2.0.0 Message accepted for delivery"


class _FreePortController(Controller):
    """Binds port 0 and learns the port the OS chose before the server is announced
    ready (``Controller`` itself needs the port up front: it connects to it at start)."""

    async def _create_server(self) -> asyncio.AbstractServer:  # type: ignore[override]
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


@asynccontextmanager
async def smtp_server(
    host: str = "127.0.0.1", *, credentials: tuple[str, str] | None = None
) -> AsyncIterator[SmtpRecorder]:
    """Run an aiosmtpd server on ``host`` and a free port until the block ends.

    With ``credentials`` (user, password) the server offers AUTH over plain text, answers
    535 to any other pair, and 530 to MAIL FROM before a successful AUTH.
    """
    recorder = SmtpRecorder()
    auth: dict[str, Any] = {}
    if credentials is not None:
        expected = LoginPassword(credentials[0].encode(), credentials[1].encode())

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            return AuthResult(success=data == expected, handled=False)  # False: answer 535

        # AUTH offered without TLS (a test server has no certificate); "required" is
        # enforced in handle_MAIL, since aiosmtpd warns about auth_required without TLS.
        auth = {"auth_require_tls": False, "authenticator": authenticator}
        recorder.require_auth = True
    controller = _FreePortController(recorder, hostname=host, port=0, **auth)
    await asyncio.to_thread(controller.start)
    recorder.host, recorder.port = host, controller.port
    try:
        yield recorder
    finally:
        await asyncio.to_thread(controller.stop)
