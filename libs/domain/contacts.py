"""Contacts as the core sees them: what one event says about its contact (a ``Plan``),
the rules for mobile numbers, emails and attribute names, and the errors of a contact
write.  Pure: the repository in ``libs.infra.mongo.contacts`` stores what this decides."""

from __future__ import annotations

import re
import uuid
from email.utils import parseaddr
from typing import Any

import msgspec
import phonenumbers

__all__ = [
    "ATTRIBUTE_NAME",
    "ATTRIBUTE_NAME_PATTERN",
    "CONTACT_FIELDS",
    "EMAIL_INPUT_PATTERN",
    "EMAIL_PATTERN",
    "NO_IDENTITY",
    "SYSTEM_ATTRIBUTES",
    "SYSTEM_NAMES",
    "ContactError",
    "InvalidField",
    "MobileTaken",
    "Plan",
    "email_contact_id",
    "is_attribute_name",
    "normalize_email",
    "normalize_mobile",
]

NO_IDENTITY = "no mobile number or email in the event"
# Subscriber attribute names: the one rule, for the config API, the field mapping,
# the contacts repository and the OpenAPI schema.  A pattern string, so a msgspec
# ``Meta(pattern=...)`` and JSON Schema (both search, hence the anchors) can use it;
# ``(?!\n)``: ``$`` would also match before a final newline.
ATTRIBUTE_NAME_PATTERN = "^[a-z][a-z0-9_]{0,63}(?!\n)$"
ATTRIBUTE_NAME = re.compile(ATTRIBUTE_NAME_PATTERN)
# The system attributes every event's context has (``system.<name>``): name, JSON type
# and label. The executor builds them, validation accepts them in paths, and the
# structure listing shows them: all three read this table.
SYSTEM_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "contact_id": ("string", "Contact id"),
    "name": ("string", "Contact name"),
    "email": ("string", "Contact email"),
    "mobile": ("string", "Contact mobile (E.164)"),
    "time_zone": ("string", "Contact time zone"),
    "current_time": ("string", "Current time (ISO 8601, UTC)"),
}
SYSTEM_NAMES = frozenset(SYSTEM_ATTRIBUTES)
# The system fields of a contact that ``update_fields`` may set by name.
CONTACT_FIELDS = ("name", "email", "mobile", "time_zone", "owner", "channel")
# An email address once trimmed and lower-cased (see ``normalize_email``): one ``@``, a
# dot in the domain, no spaces, brackets or separators.
_EMAIL_CORE = r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]+"
EMAIL_PATTERN = rf"^{_EMAIL_CORE}(?!\n)$"
# The same rule for an address as sent, before ``normalize_email`` trims it (the config
# API's schema): blanks around it are allowed, nothing else.
EMAIL_INPUT_PATTERN = rf"^\s*{_EMAIL_CORE}\s*$"
_EMAIL = re.compile(EMAIL_PATTERN)
_MAX_MOBILE_CHARS = 64
_MAX_EMAIL_CHARS = 254
# Ids of contacts created from an email alone: uuid5(namespace, email).
_EMAIL_ID_NAMESPACE = uuid.UUID("5b0f7f0e-3c3e-4d53-9a43-0c6f1e7a2b11")


# ---------------------------------------------------------------- the plan


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What one event says about its contact: the mapper core's output, this module's input.

    ``mobile`` is E.164 and ``email`` lower-cased (or None); ``errors`` are problems
    with single values (an invalid number, an unknown channel) that did not stop
    the rest of the mapping; ``skip_reason`` says why no contact can be written.
    """

    mobile: str | None = None
    email: str | None = None
    name: str | None = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    channel: str | None = None
    owner: str | None = None
    errors: list[str] = msgspec.field(default_factory=list)
    skip_reason: str | None = None


# ---------------------------------------------------------------- normalisers


def is_attribute_name(name: Any) -> bool:
    """Whether ``name`` may name a subscriber attribute (``ATTRIBUTE_NAME_PATTERN``)."""
    return isinstance(name, str) and ATTRIBUTE_NAME.match(name) is not None


def normalize_mobile(raw: Any, region: str) -> str | None:
    """``raw`` as an E.164 number (``+14155550100``), or None when it is not a valid one.

    Numbers without a country code are read in ``region`` (ISO 3166 alpha-2);
    extensions are dropped.  Integers are accepted (JSON bodies often carry numbers).
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        raw = str(raw)
    elif isinstance(raw, float) and raw.is_integer():
        raw = str(int(raw))
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_MOBILE_CHARS:
        return None
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: Any) -> str | None:
    """``raw`` trimmed and lower-cased, or None when it does not look like an address.

    A loose check (one ``@``, a dot in the domain, no spaces); ``Ann <ann@x.io>``
    is accepted as ``ann@x.io``.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_EMAIL_CHARS * 2:
        return None
    if "<" in text:
        text = parseaddr(text)[1]
    text = text.strip().lower()
    if len(text) > _MAX_EMAIL_CHARS or not _EMAIL.match(text):
        return None
    return text


def email_contact_id(email: str) -> str:
    """The id of a contact created from ``email`` alone (deterministic: races converge)."""
    return uuid.uuid5(_EMAIL_ID_NAMESPACE, email).hex


# ---------------------------------------------------------------- errors


class ContactError(ValueError):
    """A contact write that can never succeed as asked (a permanent error)."""


class InvalidField(ContactError):
    """A field name or value ``update_fields``/``set_owner`` cannot store."""


class MobileTaken(ContactError):
    """The number belongs to another contact (the unique index on ``mobile``)."""
