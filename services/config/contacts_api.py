"""Contacts (F6): search by mobile or email, read one. Read-only: the pipeline writes them."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aiohttp import web

from libs.domain.contacts import normalize_mobile
from libs.infra.http import ApiError
from libs.infra.mongo.contacts import Contacts
from services.config import models
from services.config.context import CTX
from services.config.openapi import Routes

routes = Routes()

SEARCH_REGION = "US"  # numbers without a country code are read as US numbers


def _contact(contact: dict[str, Any]) -> models.Contact:
    out = dict(contact)
    for key in ("created_at", "updated_at"):
        value = out.get(key)
        out[key] = value.isoformat() if value is not None else None
    return models.Contact(**out)


def _mobile_param(request: web.Request) -> str:
    """``?mobile=`` with a leading unescaped ``+`` read as a plus, not as a space.

    Form encoding turns spaces into ``+``, and people paste ``?mobile=+4420...``
    unescaped; a phone number has a plus only in front, so both read right.
    """
    for part in request.rel_url.raw_query_string.split("&"):
        key, _, value = part.partition("=")
        if unquote(key.replace("+", " ")) == "mobile":
            lead = "+" if value.startswith("+") else ""
            return (lead + unquote(value[len(lead) :].replace("+", " "))).strip()
    return ""


@routes.operation(
    "GET", "/api/v1/contacts", "searchContacts", "Find contacts by mobile and/or email",
    tag="crm", query=models.ContactQuery, returns=models.ContactList, errors=(400,),
    description="At least one of `mobile` and `email` (400 otherwise); first added first.",
)  # fmt: skip
async def search(request: web.Request, query: models.ContactQuery) -> models.ContactList:
    """``?mobile=`` (any format; E.164 before searching) and/or ``?email=`` (any case)."""
    mobile_raw = _mobile_param(request)  # query.mobile, with a leading + kept
    email_raw = query.email.strip()
    if not mobile_raw and not email_raw:
        raise ApiError(400, "query_required", "search contacts with ?mobile= or ?email= (or both)")
    mobile = None
    if mobile_raw:
        mobile = normalize_mobile(mobile_raw, SEARCH_REGION)
        if mobile is None:
            raise ApiError(
                400,
                "invalid_mobile",
                f"mobile {mobile_raw[:64]!r} is not a valid phone number "
                f"(numbers without a country code are read as {SEARCH_REGION})",
            )
    contacts = Contacts(request.app[CTX].store)
    items = await contacts.find(mobile=mobile, email=email_raw.lower() or None, limit=query.limit)
    return models.ContactList(items=[_contact(c) for c in items])


@routes.operation(
    "GET", "/api/v1/contacts/{id}", "getContact", "Read a contact", tag="crm",
    returns=models.Contact, errors=(404,),
)  # fmt: skip
async def get(request: web.Request) -> models.Contact:
    contact = await Contacts(request.app[CTX].store).get(request.match_info["id"])
    if contact is None:
        raise ApiError(404, "not_found", "contact not found")
    return _contact(contact)
