"""A channel's credentials go to the channel's origin only (services.executor.actions).

Before: an HTTP step with a channel and a templated absolute URL sent the channel's
headers (``Authorization: Bearer …``) to whatever host the webhook named."""

from __future__ import annotations

import pytest

from services.executor.actions import on_origin
from services.executor.errors import PermanentError

BASE = "https://crm.example.com/api"


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/api",
        "https://crm.example.com/api/",
        "https://crm.example.com/api/contacts/1?x=y",
        "https://crm.example.com:443/api/v2",
    ],
)
def test_urls_on_the_channel_origin_pass(url: str) -> None:
    on_origin(url, BASE, "crm")


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/api/contacts",
        "http://crm.example.com/api/contacts",  # another scheme
        "https://crm.example.com:8443/api/contacts",  # another port
        "https://crm.example.com/apix",  # not under the path prefix
        "https://crm.example.com/other",
        "https://crm.example.com/api/../admin",  # .. resolved before the check
        "https://crm.example.com.attacker.example/api",
        "https://user@attacker.example/api",
    ],
)
def test_urls_elsewhere_are_refused(url: str) -> None:
    with pytest.raises(PermanentError) as caught:
        on_origin(url, BASE, "crm")
    assert "outside channel 'crm'" in caught.value.message


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("::127.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::8.8.8.8", False),
        ("fec0::1", False),
        ("::ffff:10.0.0.1", False),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
    ],
)
def test_private_address_guard_knows_the_disguised_ranges(address: str, public: bool) -> None:
    from services.executor.adapters.http import is_public

    assert is_public(address) is public


async def test_mail_servers_on_private_addresses_are_refused() -> None:
    """Before: SMTP hosts went through no private-address guard at all."""
    from services.executor.actions import refuse_private_host

    for host in ("127.0.0.1", "localhost", "10.0.0.5", "::1"):
        with pytest.raises(PermanentError) as caught:
            await refuse_private_host(host, 25)
        assert "allow_private" in caught.value.message


def test_a_templated_to_cannot_mail_a_crowd() -> None:
    from services.executor.adapters.email import MAX_RECIPIENTS, parse_recipients

    many = ",".join(f"u{i}@example.com" for i in range(MAX_RECIPIENTS + 1))
    with pytest.raises(PermanentError):
        parse_recipients(many)
    assert len(parse_recipients(",".join(many.split(",")[:MAX_RECIPIENTS]))) == MAX_RECIPIENTS
