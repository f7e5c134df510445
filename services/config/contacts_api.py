"""Contacts (F6): search by mobile or email, read one. Read-only: the pipeline writes them."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aiohttp import web

from libs.domain.contacts import normalize_mobile
from libs.infra.http import ApiError
from libs.infra.mongo.contacts import Contacts
from services.config.context import CTX

routes = web.RouteTableDef()

SEARCH_REGION = "US"  # numbers without a country code are read as US numbers
MAX_LIMIT = 200


def _json(contact: dict[str, Any]) -> dict[str, Any]:
    out = dict(contact)
    for key in ("created_at", "updated_at"):
        value = out.get(key)
        out[key] = value.isoformat() if value is not None else None
    return out


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


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be an integer in 1..{MAX_LIMIT}")
    return limit


@routes.get("/api/v1/contacts")
async def search(request: web.Request) -> web.Response:
    """``?mobile=`` (any format; E.164 before searching) and/or ``?email=`` (any case)."""
    mobile_raw = _mobile_param(request)
    email_raw = request.query.get("email", "").strip()
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
    items = await contacts.find(
        mobile=mobile, email=email_raw.lower() or None, limit=_limit(request)
    )
    return web.json_response({"items": [_json(c) for c in items]})


@routes.get("/api/v1/contacts/{id}")
async def get(request: web.Request) -> web.Response:
    contact = await Contacts(request.app[CTX].store).get(request.match_info["id"])
    if contact is None:
        raise ApiError(404, "not_found", "contact not found")
    return web.json_response(_json(contact))
