"""Who may send to a connector (F12), applied to an aiohttp request: allowed addresses,
subscription handshakes and signature verification, in that order.

The checks themselves are pure (``libs.domain.addresses``/``handshakes``/
``verification``); this module only reads the request for them.  The order matters:
an address is refused before its body is read; a handshake that its provider does not
sign (Meta, Graph, Dropbox, Okta, X) is answered before verification, since no
signature comes with it; Slack's and Zoom's are signed like their events, so they are
verified first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import addresses, handshakes, verification
from libs.domain.bodies import is_json, media_type
from libs.domain.connector import ConnectorConfig
from libs.domain.verification import Refused


@dataclass(frozen=True)
class Source:
    """What ingest needs to check a request's source: the public URL it was sent to
    and the proxies whose ``X-Forwarded-For`` is believed."""

    public_url: str
    trusted: Sequence[addresses.Network]

    def client(self, request: web.Request) -> str | None:
        return addresses.client(
            request.remote, request.headers.get("X-Forwarded-For"), self.trusted
        )

    def check_address(self, config: ConnectorConfig, client: str | None) -> None:
        if not config.allowed_ips:
            return
        if not addresses.within(
            addresses.parse(client), addresses.networks(tuple(config.allowed_ips))
        ):
            raise Refused(
                "address_not_allowed", f"{client} is not in the connector's allowed_ips", 403
            )

    def url(self, request: web.Request) -> str:
        """The URL the sender called, as the sender saw it (behind any proxy)."""
        return self.public_url + request.raw_path

    def handshake(
        self, config: ConnectorConfig, request: web.Request, raw: bytes, signed: bool
    ) -> handshakes.Reply | None:
        """The answer to a handshake of the configured kind (``signed``: Slack's and
        Zoom's, asked after verification; the others before it), or None."""
        hs = config.handshake
        if hs is None or (hs.kind in handshakes.SIGNED) != signed:
            return None
        body: Any = None
        if request.method == "POST" and is_json(media_type(request.content_type)):
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                body = None
        v = config.verification
        secret = v.secrets[0] if v is not None and v.secrets else None
        asked = handshakes.Asked(
            method=request.method,
            query=request.rel_url.query,
            headers=request.headers,
            json=body if isinstance(body, dict) else None,
        )
        return handshakes.answer(hs, asked, hs.secret or secret)

    def verify(
        self, config: ConnectorConfig, request: web.Request, raw: bytes, now: float
    ) -> str | None:
        """The request's message id when it is the sender's; raises Refused."""
        cfg = config.verification
        if cfg is None:
            return None
        signed = verification.Signed(
            method=request.method,
            url=self.url(request),
            headers=request.headers,
            body=raw,
            content_type=request.headers.get("Content-Type"),
            query=list(request.rel_url.query.items()) if cfg.query_param else (),
        )
        return verification.verify(cfg, signed, now)
