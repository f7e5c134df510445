"""Subscription handshakes (F12): what a provider sends before any event, and the answer
it expects, so an endpoint is accepted without the operator writing a Map Response.

Pure: a request in, a :class:`Reply` (or None: not a handshake) out.  A handshake is
recognised by its documented shape only; anything else is an ordinary event.  Echoed
challenges are bounded and sent as text with ``nosniff`` (an echo must not become a
page in someone's browser).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import msgspec

from libs.domain.redaction import redact_secret
from libs.domain.verification import Refused

Kind = Literal["meta", "slack", "zoom", "graph", "dropbox", "okta", "twitter"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
# Kinds whose handshake the provider signs like its events: verification runs first.
SIGNED: Final[frozenset[str]] = frozenset({"slack", "zoom"})
# Kinds whose answer is computed with a secret (Zoom's secret token, X's consumer secret).
NEEDS_SECRET: Final[frozenset[str]] = frozenset({"zoom", "twitter"})
MAX_CHALLENGE: Final = 2048  # characters echoed back, at most


class Handshake(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``config.handshake``.  ``verify_token`` (Meta) and ``secret`` (Zoom, X) are
    write-only; without ``secret`` the verification's first secret is used."""

    kind: Kind
    verify_token: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    note: str  # what the log says was answered


@dataclass(frozen=True)
class Asked:
    """What a handshake may read of a request: the query (first value per name),
    headers by lower-case name, and the body when it is a JSON object."""

    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Mapping[str, Any] | None


def problems(cfg: Handshake, verification_secret: str | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if cfg.kind == "meta" and not cfg.verify_token:
        out.append(("verify_token", "the meta handshake needs the verify token set at Meta"))
    if cfg.kind in NEEDS_SECRET and not (cfg.secret or verification_secret):
        out.append(("secret", f"the {cfg.kind} handshake needs a secret (or a verification)"))
    return out


def answer(cfg: Handshake, asked: Asked, secret: str | None) -> Reply | None:
    """The reply to a handshake, None when the request is not one; raises
    :class:`Refused` (403) for a Meta handshake with the wrong verify token."""
    return _KINDS[cfg.kind](cfg, asked, secret or cfg.secret or "")


def _text(value: str, note: str) -> Reply:
    return Reply(200, "text/plain; charset=utf-8", value.encode(), note)


def _json(value: dict[str, str], note: str) -> Reply:
    return Reply(200, "application/json", msgspec.json.encode(value), note)


def _small(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_CHALLENGE else None


def _hmac_sha256(secret: str, text: str) -> bytes:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()


def _meta(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    challenge = _small(asked.query.get("hub.challenge"))
    if asked.method != "GET" or asked.query.get("hub.mode") != "subscribe" or not challenge:
        return None
    token = asked.query.get("hub.verify_token", "")
    if not hmac.compare_digest(token.encode(), (cfg.verify_token or "").encode()):
        raise Refused("bad_verify_token", "hub.verify_token does not match", status=403)
    return _text(challenge, "meta: hub.challenge echoed")


def _slack(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    body = asked.json or {}
    challenge = _small(body.get("challenge"))
    if body.get("type") != "url_verification" or not challenge:
        return None
    return _json({"challenge": challenge}, "slack: url_verification answered")


def _zoom(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    body = asked.json or {}
    payload = body.get("payload")
    plain = _small(payload.get("plainToken")) if isinstance(payload, dict) else None
    if body.get("event") != "endpoint.url_validation" or not plain:
        return None
    encrypted = _hmac_sha256(secret, plain).hex()
    return _json(
        {"plainToken": plain, "encryptedToken": encrypted}, "zoom: endpoint.url_validation"
    )


def _graph(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    token = _small(asked.query.get("validationToken"))
    return None if token is None else _text(token, "graph: validationToken echoed")


def _dropbox(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    challenge = _small(asked.query.get("challenge"))
    if asked.method != "GET" or challenge is None:
        return None
    return _text(challenge, "dropbox: challenge echoed")


def _okta(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    challenge = _small(asked.headers.get("x-okta-verification-challenge"))
    if asked.method != "GET" or challenge is None:
        return None
    return _json({"verification": challenge}, "okta: verification challenge answered")


def _twitter(cfg: Handshake, asked: Asked, secret: str) -> Reply | None:
    crc = _small(asked.query.get("crc_token"))
    if asked.method != "GET" or crc is None:
        return None
    token = "sha256=" + base64.b64encode(_hmac_sha256(secret, crc)).decode()
    return _json({"response_token": token}, "twitter: CRC answered")


_KINDS: Final = {
    "meta": _meta,
    "slack": _slack,
    "zoom": _zoom,
    "graph": _graph,
    "dropbox": _dropbox,
    "okta": _okta,
    "twitter": _twitter,
}
assert set(_KINDS) == set(KINDS)


def shown(cfg: Handshake) -> Handshake:
    """``cfg`` as the API shows it: the verify token and secret redacted."""
    return msgspec.structs.replace(
        cfg,
        verify_token=None if cfg.verify_token is None else redact_secret(cfg.verify_token),
        secret=None if cfg.secret is None else redact_secret(cfg.secret),
    )
