"""Table-driven tests of the mapper core: one event context + a field mapping -> a Plan."""

from __future__ import annotations

from typing import Any

import pytest

from libs.domain.connector import FieldMapping
from libs.domain.contacts import NO_IDENTITY, Plan, normalize_email, normalize_mobile
from libs.domain.mapping import plan, validate_mapping

CONTEXT: dict[str, Any] = {
    "body": {
        "customer": {
            "phone": "+1 415 555 0100",
            "local_phone": "(415) 555-0100",
            "uk_phone": "020 7946 0958",
            "numeric_phone": 14155550100,
            "bad_phone": "xyz",
            "email": "  Ann.Lee@Example.COM ",
            "bad_email": "ann at example",
            "first": "Ann",
            "last": "Lee",
            "blank": "   ",
            "tags": ["vip", "repeat"],
            "address": {"city": "Oslo"},
        },
        "order": {"total": 42.5, "items": [{"sku": "A1"}, {"sku": "B2"}]},
        "route": {"channel": "wa-sales", "owner": "Bob@Shop.IO"},
    },
    "custom_variables": {"channel": "wa-stranger", "owner": "eve@shop.io", "plan": "pro"},
    "headers": {"x-shop-id": "shop-42"},
    "query": {},
    "method": "POST",
}

CHANNELS = {"wa-main", "wa-sales"}
AGENTS = {"bob@shop.io", "Carol@Shop.io"}


def m(**kwargs: Any) -> FieldMapping:
    kwargs.setdefault("channel", "wa-main")
    return FieldMapping(**kwargs)


def run(
    mapping: FieldMapping,
    context: dict[str, Any] | None = None,
    channels: set[str] | None = CHANNELS,
    agents: set[str] | None = AGENTS,
) -> Plan:
    return plan(
        mapping,
        CONTEXT if context is None else context,
        known_channels=channels,
        known_agents=agents,
    )


# ---------------------------------------------------------------- mobile numbers

# (id, path, region, expected E.164 or None, expected errors)
MOBILE_CASES = [
    ("international", "body.customer.phone", "US", "+14155550100", []),
    ("us-national", "body.customer.local_phone", "US", "+14155550100", []),
    ("gb-national", "body.customer.uk_phone", "GB", "+442079460958", []),
    ("json-number", "body.customer.numeric_phone", "US", "+14155550100", []),
    ("gb-number-read-as-us", "body.customer.uk_phone", "US", None,
     ["mobile '020 7946 0958' is not a valid phone number"]),
    ("invalid", "body.customer.bad_phone", "US", None,
     ["mobile 'xyz' is not a valid phone number"]),
    ("missing", "body.customer.nope", "US", None, []),
    ("blank", "body.customer.blank", "US", None, []),
    ("object", "body.customer.address", "US", None,
     ["mobile at 'body.customer.address' is dict, not a text value"]),
    ("template", "+44 {{ body.customer.uk_phone[1:] }}", "US", "+442079460958", []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "region", "expected", "errors"),
    [c[1:] for c in MOBILE_CASES],
    ids=[c[0] for c in MOBILE_CASES],
)
def test_mobile(source: str, region: str, expected: str | None, errors: list[str]) -> None:
    result = run(m(mobile=source, email="body.customer.email", default_region=region))
    assert result.mobile == expected
    assert result.errors == errors


# ---------------------------------------------------------------- email

EMAIL_CASES = [
    ("lower-cased-and-trimmed", "body.customer.email", "ann.lee@example.com", []),
    ("display-name-form", "Ann <{{ body.customer.email | trim }}>", "ann.lee@example.com", []),
    ("invalid", "body.customer.bad_email", None,
     ["email 'ann at example' is not a valid email address"]),
    ("missing", "body.customer.nope", None, []),
    ("template-of-missing", "{{ body.customer.nope }}", None, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "expected", "errors"),
    [c[1:] for c in EMAIL_CASES],
    ids=[c[0] for c in EMAIL_CASES],
)
def test_email(source: str, expected: str | None, errors: list[str]) -> None:
    result = run(m(mobile="body.customer.phone", email=source))
    assert result.email == expected
    assert result.errors == errors


# ---------------------------------------------------------------- name and attributes

# (id, mapping kwargs, expected name, expected attributes, expected errors)
FIELD_CASES = [
    ("path-and-template",
     {"name": "{{ body.customer.first }} {{ body.customer.last }}",
      "attributes": {"city": "body.customer.address.city", "plan": "custom_variables.plan"}},
     "Ann Lee", {"city": "Oslo", "plan": "pro"}, []),
    ("json-values-kept-as-is",
     {"attributes": {"tags": "body.customer.tags", "total": "body.order.total",
                     "first_sku": "body.order.items[0].sku"}},
     None, {"tags": ["vip", "repeat"], "total": 42.5, "first_sku": "A1"}, []),
    ("missing-fields-are-left-out",
     {"name": "body.customer.nope", "attributes": {"city": "body.nope", "zip": "{{ body.nope }}"}},
     None, {}, []),
    ("header-and-number-template",
     {"attributes": {"shop": "headers.x-shop-id", "twice": "{{ body.order.total * 2 }}"}},
     None, {"shop": "shop-42", "twice": "85.0"}, []),
    ("bad-attribute-name",
     {"attributes": {"Bad.Name": "body.customer.first"}},
     None, {}, ["attribute name 'Bad.Name' is not valid"]),
    ("template-fails",
     {"name": "{{ body.customer.first + 1 }}"},
     None, {}, ["name: template failed: TypeError: can only concatenate str (not \"int\") to str"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "name", "attributes", "errors"),
    [c[1:] for c in FIELD_CASES],
    ids=[c[0] for c in FIELD_CASES],
)
def test_name_and_attributes(
    kwargs: dict[str, Any], name: str | None, attributes: dict[str, Any], errors: list[str]
) -> None:
    result = run(m(mobile="body.customer.phone", **kwargs))
    assert result.name == name
    assert result.attributes == attributes
    assert result.errors == errors


# ---------------------------------------------------------------- channel and owner

# (id, mapping kwargs, known channels, expected channel, expected errors)
CHANNEL_CASES = [
    ("static-default", {"channel": "wa-main"}, CHANNELS, "wa-main", []),
    ("dynamic-known", {"channel": "wa-main", "channel_from": "body.route.channel"}, CHANNELS,
     "wa-sales", []),
    ("dynamic-missing-falls-back", {"channel": "wa-main", "channel_from": "body.nope"}, CHANNELS,
     "wa-main", []),
    ("dynamic-unknown", {"channel": "wa-main", "channel_from": "custom_variables.channel"},
     CHANNELS, None, ["unknown channel id 'wa-stranger'"]),
    ("dynamic-unchecked", {"channel_from": "custom_variables.channel", "channel": None}, None,
     "wa-stranger", []),
    ("static-unknown", {"channel": "wa-gone"}, CHANNELS, None, ["unknown channel id 'wa-gone'"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "channels", "expected", "errors"),
    [c[1:] for c in CHANNEL_CASES],
    ids=[c[0] for c in CHANNEL_CASES],
)
def test_channel(
    kwargs: dict[str, Any], channels: set[str] | None, expected: str | None, errors: list[str]
) -> None:
    result = run(m(mobile="body.customer.phone", **kwargs), channels=channels)
    assert result.channel == expected
    assert result.errors == errors


# (id, owner_from, known agents, expected owner, expected errors)
OWNER_CASES = [
    ("known-any-case", "body.route.owner", AGENTS, "bob@shop.io", []),
    ("unknown", "custom_variables.owner", AGENTS, None, ["unknown agent 'eve@shop.io'"]),
    ("unchecked", "custom_variables.owner", None, "eve@shop.io", []),
    ("unchecked-not-an-email", "body.customer.first", None, None,
     ["owner 'ann' is not an email address"]),
    ("missing", "body.nope", AGENTS, None, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("owner_from", "agents", "expected", "errors"),
    [c[1:] for c in OWNER_CASES],
    ids=[c[0] for c in OWNER_CASES],
)
def test_owner(
    owner_from: str, agents: set[str] | None, expected: str | None, errors: list[str]
) -> None:
    result = run(m(mobile="body.customer.phone", owner_from=owner_from), agents=agents)
    assert result.owner == expected
    assert result.errors == errors


# ---------------------------------------------------------------- skip reasons

# (id, mapping kwargs, context, expected skip reason, expected errors)
SKIP_CASES = [
    ("mobile-only", {"mobile": "body.customer.phone"}, CONTEXT, None, []),
    ("email-only", {"email": "body.customer.email"}, CONTEXT, None, []),
    ("bad-mobile-good-email", {"mobile": "body.customer.bad_phone", "email": "body.customer.email"},
     CONTEXT, None, ["mobile 'xyz' is not a valid phone number"]),
    ("neither-in-event", {"mobile": "body.phone", "email": "body.email"}, {"body": {}},
     NO_IDENTITY, []),
    ("body-is-not-an-object", {"mobile": "body.phone"}, {"body": "plain text"}, NO_IDENTITY, []),
    ("only-invalid-values",
     {"mobile": "body.customer.bad_phone", "email": "body.customer.bad_email"}, CONTEXT,
     NO_IDENTITY,
     ["mobile 'xyz' is not a valid phone number",
      "email 'ann at example' is not a valid email address"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "context", "reason", "errors"),
    [c[1:] for c in SKIP_CASES],
    ids=[c[0] for c in SKIP_CASES],
)
def test_skip_reason(
    kwargs: dict[str, Any], context: dict[str, Any], reason: str | None, errors: list[str]
) -> None:
    result = run(m(**kwargs), context)
    assert result.skip_reason == reason
    assert result.errors == errors


def test_full_plan() -> None:
    mapping = FieldMapping(
        mobile="body.customer.local_phone",
        email="body.customer.email",
        name="body.customer.first",
        channel="wa-main",
        channel_from="body.route.channel",
        owner_from="body.route.owner",
        attributes={"city": "body.customer.address.city"},
    )
    assert run(mapping) == Plan(
        mobile="+14155550100",
        email="ann.lee@example.com",
        name="Ann",
        attributes={"city": "Oslo"},
        channel="wa-sales",
        owner="bob@shop.io",
    )


# ---------------------------------------------------------------- normalisers


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 415 555 0100", "US", "+14155550100"),
        ("(415) 555-0100", "us", "+14155550100"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("00 44 20 7946 0958", "DE", "+442079460958"),
        ("+1 415 555 0100 ext. 12", "US", "+14155550100"),
        (14155550100.0, "US", "+14155550100"),
        ("123", "US", None),
        ("", "US", None),
        (True, "US", None),
        (None, "US", None),
        ("9" * 100, "US", None),
    ],
    ids=[
        "plus", "lower-region", "gb", "intl-prefix", "extension-dropped", "float",
        "too-short", "empty", "bool", "none", "too-long",
    ],
)  # fmt: skip
def test_normalize_mobile(raw: Any, region: str, expected: str | None) -> None:
    assert normalize_mobile(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Ann@Example.COM ", "ann@example.com"),
        ("Ann Lee <ann@example.com>", "ann@example.com"),
        ("ann@example", None),
        ("ann@@example.com", None),
        ("ann lee@example.com", None),
        ("@example.com", None),
        (42, None),
    ],
    ids=["case-and-space", "display-name", "no-dot", "two-ats", "space", "no-local", "number"],
)
def test_normalize_email(raw: Any, expected: str | None) -> None:
    assert normalize_email(raw) == expected


# ---------------------------------------------------------------- validate_mapping

# (id, mapping kwargs (no defaults added), expected problems)
VALIDATE_CASES = [
    ("complete", {"mobile": "body.phone", "channel": "wa-main"}, []),
    ("email-and-dynamic-channel",
     {"email": "{{ body.email }}", "channel_from": "custom_variables.ch"}, []),
    ("empty", {},
     [("$.mapping", "map the mobile number or the email before any other field (F6)"),
      ("$.mapping", "map the default channel (channel or channel_from) before any other field")]),
    ("name-without-identity", {"name": "body.name", "channel": "wa-main"},
     [("$.mapping", "map the mobile number or the email before any other field (F6)")]),
    ("no-channel", {"mobile": "body.phone"},
     [("$.mapping", "map the default channel (channel or channel_from) before any other field")]),
    ("bad-path", {"mobile": "body..phone", "channel": "wa-main"},
     [("$.mapping.mobile", "invalid attribute path 'body..phone' at offset 4")]),
    ("not-an-event-attribute", {"mobile": "subscriber.phone", "channel": "wa-main"},
     [("$.mapping.mobile", "'subscriber.phone' is not an event attribute: a mapping reads body, "
       "custom_variables, headers, query, method, source_ip, received_at, event_id")]),
    ("bad-template", {"mobile": "body.phone", "name": "{{ body.name ", "channel": "wa-main"},
     [("$.mapping.name", "template does not compile: line 1: unexpected end of template, "
       "expected 'end of print statement'.")]),
    ("blank-source", {"email": " ", "mobile": "body.phone", "channel": "wa-main"},
     [("$.mapping.email", "must be an attribute path or a template, not empty")]),
    ("bad-region", {"mobile": "body.phone", "channel": "wa-main", "default_region": "XX"},
     [("$.mapping.default_region", "'XX' is not a region code (ISO 3166 alpha-2, e.g. US)")]),
    ("bad-attribute", {"mobile": "body.phone", "channel": "wa-main",
                       "attributes": {"City": "body.city", "zip": "body[zip"}},
     [("$.mapping.attributes.City",
       "attribute names are a lower-case letter, then letters, digits and _"),
      ("$.mapping.attributes.zip", "invalid attribute path 'body[zip' at offset 4")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [c[1:] for c in VALIDATE_CASES],
    ids=[c[0] for c in VALIDATE_CASES],
)
def test_validate_mapping(kwargs: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert validate_mapping(FieldMapping(**kwargs), "$.mapping") == expected
