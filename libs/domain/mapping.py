"""Field mapping (F6): what one event says about its contact, as a :class:`Plan`.

Pure: the event context in, a plan out; the contacts repository
(``libs.infra.mongo.contacts.Contacts.apply``) writes a batch of plans.  A mapping value is an
attribute path into the event (``body.customer.phone``) or, when it contains
``{{`` or ``{%``, a template rendered over the event.  Problems with single values
(an invalid number, an unknown channel) are collected in ``Plan.errors`` and do not
stop the rest of the mapping; an event with neither a mobile number nor an email
cannot be tied to a contact and gets ``skip_reason``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import phonenumbers

from libs.domain import paths, templating
from libs.domain.connector import FieldMapping
from libs.domain.contacts import (
    NO_IDENTITY,
    Plan,
    is_attribute_name,
    normalize_email,
    normalize_mobile,
)
from libs.domain.events import EVENT_ROOTS
from libs.domain.templating import is_template

__all__ = ["Plan", "Problem", "plan", "validate_mapping"]

Problem = tuple[str, str]

# A mapping reads the event attributes, EVENT_ROOTS (see ``libs.domain.events``).
_SHOW = 64  # characters of a bad value quoted in an error


# ---------------------------------------------------------------- planning


def plan(
    mapping: FieldMapping,
    context: Mapping[str, Any],
    *,
    known_channels: Collection[str] | None,
    known_agents: Collection[str] | None,
) -> Plan:
    """The contact plan of one event. ``known_*`` None: that check is skipped."""
    errors: list[str] = []

    mobile = None
    raw = _text(mapping.mobile, context, "mobile", errors)
    if raw is not None:
        mobile = normalize_mobile(raw, mapping.default_region)
        if mobile is None:
            errors.append(f"mobile {_show(raw)!r} is not a valid phone number")

    email = None
    raw = _text(mapping.email, context, "email", errors)
    if raw is not None:
        email = normalize_email(raw)
        if email is None:
            errors.append(f"email {_show(raw)!r} is not a valid email address")

    name = _text(mapping.name, context, "name", errors)

    channel = mapping.channel or None
    dynamic = _text(mapping.channel_from, context, "channel", errors)
    if dynamic is not None:
        channel = dynamic
    if channel is not None and known_channels is not None and channel not in known_channels:
        errors.append(f"unknown channel id {_show(channel)!r}")
        channel = None

    owner = None
    raw = _text(mapping.owner_from, context, "owner", errors)
    if raw is not None:
        owner = raw.lower()
        # Agent emails are stored lower-cased (the mapper's set is too): a hit costs one
        # lookup; only a miss looks again through the set lower-cased.
        if known_agents is not None and not (
            owner in known_agents or owner in {a.lower() for a in known_agents}
        ):
            errors.append(f"unknown agent {_show(owner)!r}")
            owner = None
        elif known_agents is None and normalize_email(owner) is None:
            errors.append(f"owner {_show(owner)!r} is not an email address")
            owner = None

    attributes: dict[str, Any] = {}
    for key, source in mapping.attributes.items():
        if not is_attribute_name(key):
            errors.append(f"attribute name {key!r} is not valid")
            continue
        value = _value(source, context, f"attribute {key!r}", errors)
        if value is not None:
            attributes[key] = value

    return Plan(
        mobile=mobile,
        email=email,
        name=name,
        attributes=attributes,
        channel=channel,
        owner=owner,
        errors=errors,
        skip_reason=NO_IDENTITY if mobile is None and email is None else None,
    )


def _value(source: str | None, context: Mapping[str, Any], what: str, errors: list[str]) -> Any:
    """The value a mapping entry reads, or None when the event lacks it.

    A path gives the JSON value as is (text, number, list...); a template gives
    text.  Empty text counts as missing.
    """
    if not source:
        return None
    if is_template(source):
        try:
            text = templating.render(source, context).text
        except templating.TemplateError as exc:
            errors.append(f"{what}: template failed: {exc}")
            return None
        return text if text.strip() else None
    try:
        value = paths.resolve(context, source)
    except paths.PathError as exc:
        errors.append(f"{what}: {exc}")
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _text(source: str | None, context: Mapping[str, Any], what: str, errors: list[str]) -> Any:
    """A single text value (numbers become text); lists and objects are errors."""
    value = _value(source, context, what, errors)
    if value is None:
        return None
    if isinstance(value, (bool, dict, list)):
        errors.append(f"{what} at {source!r} is {type(value).__name__}, not a text value")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"


# ---------------------------------------------------------------- static checks


def validate_mapping(mapping: FieldMapping, prefix: str) -> list[Problem]:
    """Every problem of a mapping as (JSON path, message), e.g. ``$.mapping.mobile``.

    F6: the mobile number or the email, and the default channel, must be mapped
    before any other field; a mapping without them is rejected.
    """
    problems: list[Problem] = []
    if not (mapping.mobile or mapping.email):
        problems.append((prefix, "map the mobile number or the email before any other field (F6)"))
    if not (mapping.channel or mapping.channel_from):
        problems.append(
            (prefix, "map the default channel (channel or channel_from) before any other field")
        )
    if mapping.channel is not None and not mapping.channel.strip():
        problems.append((f"{prefix}.channel", "the default channel id must not be empty"))
    if mapping.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(
            (
                f"{prefix}.default_region",
                f"{mapping.default_region!r} is not a region code (ISO 3166 alpha-2, e.g. US)",
            )
        )
    for field in FieldMapping.SOURCES:
        source = getattr(mapping, field)
        if source is not None:
            _source(source, f"{prefix}.{field}", problems)
    for key, source in mapping.attributes.items():
        where = f"{prefix}.attributes.{key}"
        if not is_attribute_name(key):
            problems.append(
                (where, "attribute names are a lower-case letter, then letters, digits and _")
            )
        _source(source, where, problems)
    return problems


def _source(source: str, where: str, problems: list[Problem]) -> None:
    if not source.strip():
        problems.append((where, "must be an attribute path or a template, not empty"))
        return
    if is_template(source):
        issue = templating.check(source)
        if issue:
            problems.append((where, f"template does not compile: {issue}"))
        return
    try:
        parts = paths.parse(source)
    except paths.PathError as exc:
        problems.append((where, str(exc)))
        return
    if parts[0] not in EVENT_ROOTS:
        problems.append(
            (
                where,
                f"{source!r} is not an event attribute: a mapping reads " + ", ".join(EVENT_ROOTS),
            )
        )
