"""The HTTP-request action, with a resolver that refuses private and loopback targets.

The check sits in the resolver (not before the request) so that the address that is
checked is the address that is connected to: DNS answers cannot change in between.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.executor.errors import PermanentError, TransientError, classify_http_status

MAX_RESPONSE_BYTES = 64 * 1024


# Ranges Python's ``is_global`` calls global that reach private or metadata addresses:
# IPv4-compatible IPv6 (``::127.0.0.1``), NAT64 of any IPv4 address (``64:ff9b::/96``,
# e.g. 169.254.169.254 behind a NAT64 gateway) and the old site-local ``fec0::/10``.
_DENIED = tuple(
    ipaddress.ip_network(n) for n in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48", "fec0::/10")
)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _DENIED):
            return False
        if ip.ipv4_mapped is not None:
            return is_public(str(ip.ipv4_mapped))
    return ip.is_global and not ip.is_multicast


def refuse_private_literal(url: str) -> None:
    """aiohttp skips the resolver for IP literals, so they are checked here."""
    host = yarl.URL(url).host or ""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: the GuardedResolver checks what it resolves to
    if not is_public(host.strip("[]")):
        raise PermanentError(
            f"refused: {host} is a private or loopback address; "
            "allow it on the HTTP channel (allow_private) to call it"
        )


class GuardedResolver(AbstractResolver):
    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if is_public(r["host"])]
        if not allowed:
            raise PermanentError(
                f"refused: {host} resolves to a private or loopback address; "
                "allow it on the HTTP channel (allow_private) to call it"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


# Connections open at once per session: also the most HTTP actions in flight in one
# executor process, so the most a crash of it can leave sent but not journaled.
MAX_CONNECTIONS = 200


class HttpClient:
    """Two sessions: one that refuses private targets (default), one that allows them."""

    def __init__(self, allow_private_everywhere: bool = False) -> None:
        self._allow_all = allow_private_everywhere

    @property
    def allows_private(self) -> bool:
        """Whether the operator allowed private targets for every action."""
        return self._allow_all
        self._guarded: aiohttp.ClientSession | None = None
        self._open: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._guarded = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(), limit=MAX_CONNECTIONS)
        )
        self._open = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS))

    async def close(self) -> None:
        for session in (self._guarded, self._open):
            if session is not None:
                await session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: str,
        timeout_s: float,
        allow_private: bool = False,
    ) -> dict[str, Any]:
        session = self._open if (allow_private or self._allow_all) else self._guarded
        assert session is not None, "HttpClient.start() was not called"
        if not url.lower().startswith(("http://", "https://")):
            raise PermanentError(f"URL must be http(s): {url!r}")
        if not (allow_private or self._allow_all):
            refuse_private_literal(url)
        try:
            async with session.request(
                method,
                url,
                headers=dict(headers),
                data=body.encode() if body else None,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES)
                output = {"status": response.status, "body": _decode(raw, response.content_type)}
                retry_after = response.headers.get("Retry-After")
        except PermanentError:
            raise
        except aiohttp.InvalidURL as exc:
            raise PermanentError(f"invalid URL: {exc}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, PermanentError) else None
            if cause is not None:
                raise cause from None
            raise TransientError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        kind = classify_http_status(output["status"])
        if kind is TransientError:
            raise TransientError(
                f"{method} {url} answered {output['status']}",
                retry_after_s=_seconds(retry_after),
                output=output,
            )
        if kind is PermanentError:
            raise PermanentError(f"{method} {url} answered {output['status']}", output=output)
        return output


def _decode(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: fall back to the backoff schedule
