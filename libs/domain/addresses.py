"""Which address a request comes from, and whether a connector lets it in (F12).

Behind a reverse proxy the peer is the proxy; ``X-Forwarded-For`` says who came
before it, but any sender can write that header.  So it is believed only as far as
the operator says (``HOOKLINE_TRUSTED_PROXIES``): read from the right, every address
that is a trusted proxy is skipped, and the first one that is not is the client.
With no trusted proxies the peer address is the client, whatever the header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_FORWARDED_HOPS = 16  # addresses read from X-Forwarded-For, from the right


@lru_cache(maxsize=4096)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """Parsed once per distinct list (each connector's, the trusted proxies')."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def parse(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").split("]")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 to an allow-list
    return address


def within(address: Address | None, allowed: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in allowed)


def client(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address as text (see the module's docstring)."""
    if not trusted or not forwarded_for:  # the usual case: nothing to parse
        return peer
    if not within(parse(peer), trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")][-MAX_FORWARDED_HOPS:]
    for hop in reversed(hops):
        hop_address = parse(hop)
        if hop_address is None:
            return hop or peer  # a garbled hop: it stands for the client, unparsable
        if not within(hop_address, trusted):
            return str(hop_address)
    return str(parse(hops[0]) or peer)
