"""Source verification (F12): is this request from the sender it claims to be?

Pure functions over the exact bytes received (no I/O, the clock passed in), so the
same check runs in ingest and in the tests, and a body is never re-serialised before
its signature is checked (Activepieces #3230 lost signatures that way).

Every scheme is one function from (options, request, now) to the request's message id
(a replay key, or None) or a :class:`Refused`.  Secrets are compared as digests with
``hmac.compare_digest``; each of up to two active secrets is tried, so a sender can
be moved to a new secret without a lost event.

Why not ``standardwebhooks.Webhook.verify`` at run time: it decodes the body as
UTF-8 (a binary body cannot be verified), fixes the tolerance at five minutes and
reads the wall clock.  The tests sign with that library, so our check is held to the
reference implementation, not to itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal, get_args
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from libs.domain.bodies import BadRequest, media_type
from libs.domain.redaction import is_redacted, redact_secret

Scheme = Literal[
    "standard",
    "github",
    "stripe",
    "shopify",
    "slack",
    "twilio",
    "meta",
    "zoom",
    "hubspot",
    "mailgun",
    "hmac",
    "basic",
    "api_key",
]
SCHEMES: Final[tuple[Scheme, ...]] = get_args(Scheme)
Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]

MAX_SECRETS: Final = 2  # the current one and the next, during a rotation
MAX_SIGNATURES: Final = 8  # signatures read from one header (a list per rotation)
DEFAULT_TOLERANCE_S: Final = 300
# A replayed message id is caught by JetStream's duplicate window; a timestamp older
# than that must be stale, or a replay could slip between the two (a test ties them).
MAX_TOLERANCE_S: Final = 3600
# The placeholders the generic scheme's ``signed`` template may use.
SIGNED_PARTS: Final = ("body", "timestamp", "url", "method", "id")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class Verification(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``config.verification``: the scheme, its secrets (write-only) and its options.

    Options only some schemes read: ``header``/``algorithm``/``encoding``/``prefix``/
    ``signed``/``timestamp_header``/``id_header`` (``hmac``), ``header`` or
    ``query_param`` (``api_key``), ``username`` (``basic``)."""

    scheme: Scheme
    secrets: Annotated[
        list[str],
        msgspec.Meta(
            description="Write-only: shown as '…' and the last 4 characters; sent back so, "
            "the stored secret is kept. At most two active (a rotation)."
        ),
    ] = msgspec.field(default_factory=list)
    tolerance_s: Annotated[
        int, msgspec.Meta(description="Seconds a signed timestamp may be from now.")
    ] = DEFAULT_TOLERANCE_S
    header: str | None = None
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    prefix: str = ""
    signed: str = "{body}"
    timestamp_header: str | None = None
    id_header: str | None = None
    username: str | None = None
    query_param: str | None = None


class Refused(BadRequest):
    """The request is not the sender's: 401 (signature, credentials, timestamp) or 403
    (address, verify token), with a reason code for metrics and a message for the
    sender and the log.  A kind of BadRequest: refused requests are logged alike."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(status, code, message)


# The refusal codes, one per reason (metric label values, log entries, README).
REASONS: Final = (
    "missing_signature",
    "bad_signature",
    "missing_timestamp",
    "stale_timestamp",
    "missing_credentials",
    "bad_credentials",
    "address_not_allowed",
    "bad_verify_token",
)


@dataclass(frozen=True)
class Signed:
    """What a scheme may read of a request: ``headers`` by lower-case name (repeats
    joined with ", "), ``url`` the public URL the sender called (``HOOKLINE_PUBLIC_URL``
    plus path and query, not the address behind a proxy), ``body`` the exact bytes."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str | None = None
    query: Sequence[tuple[str, str]] = field(default_factory=tuple)


def verify(cfg: Verification, req: Signed, now: float) -> str | None:
    """The request's message id when it is the sender's (None if the scheme has none),
    else raise :class:`Refused`.  ``now`` is unix seconds."""
    return _SCHEMES[cfg.scheme](cfg, req, now)


def problems(cfg: Verification) -> list[tuple[str, str]]:
    """What a saved ``verification`` lacks, as (JSON path under it, message)."""
    out: list[tuple[str, str]] = []
    if not cfg.secrets:
        out.append(("secrets", "at least one secret is required"))
    elif len(cfg.secrets) > MAX_SECRETS:
        out.append(("secrets", f"at most {MAX_SECRETS} secrets are active at once"))
    for k, secret in enumerate(cfg.secrets):
        if not secret:
            out.append((f"secrets[{k}]", "must not be empty"))
        elif cfg.scheme == "standard" and _standard_key(secret) is None:
            out.append(
                (f"secrets[{k}]", "must be a 'whsec_' (or 'whpk_' ed25519 public) base64 key")
            )
    if not 1 <= cfg.tolerance_s <= MAX_TOLERANCE_S:
        out.append(
            (
                "tolerance_s",
                f"must be between 1 and {MAX_TOLERANCE_S} seconds (the replay window)",
            )
        )
    if cfg.scheme == "hmac":
        if not cfg.header:
            out.append(("header", "the hmac scheme needs the header holding the signature"))
        names = _PLACEHOLDER.findall(cfg.signed)
        unknown = sorted(set(names) - set(SIGNED_PARTS))
        if unknown:
            out.append(("signed", f"unknown placeholder(s) {unknown}; known: {SIGNED_PARTS}"))
        if "timestamp" in names and not cfg.timestamp_header:
            out.append(("timestamp_header", "'signed' uses {timestamp}: name its header"))
        if "id" in names and not cfg.id_header:
            out.append(("id_header", "'signed' uses {id}: name its header"))
    if cfg.scheme == "basic" and not cfg.username:
        out.append(("username", "the basic scheme needs the username"))
    if cfg.scheme == "api_key" and bool(cfg.header) == bool(cfg.query_param):
        out.append(("header", "the api_key scheme reads exactly one of header or query_param"))
    return out


# ---------------------------------------------------------------- building blocks


def _digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, algorithm).digest()


def _decoded(text: str, encoding: Encoding) -> bytes | None:
    """A signature as bytes, or None when it is not valid ``encoding``."""
    try:
        if encoding == "hex":
            return binascii.a2b_hex(text.strip())
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _header(req: Signed, name: str) -> str:
    """A header's value, or refused as missing (a signature scheme's own header)."""
    value = req.headers.get(name.lower(), "").strip()
    if not value:
        raise Refused("missing_signature", f"the {name} header is missing")
    return value


def _matches(
    expected: Callable[[bytes], bytes], secrets: Sequence[bytes], given: Sequence[bytes | None]
) -> bool:
    """Whether any given signature equals the expected one under any active secret."""
    found = False
    for secret in secrets:
        want = expected(secret)
        for sig in given[:MAX_SIGNATURES]:
            # No early exit: every pair is compared, in constant time each.
            found |= sig is not None and hmac.compare_digest(want, sig)
    return found


def _check(
    expected: Callable[[bytes], bytes],
    cfg: Verification,
    given: Sequence[bytes | None],
    name: str,
) -> None:
    if not _matches(expected, [s.encode() for s in cfg.secrets], given):
        raise Refused("bad_signature", f"the {name} signature does not match")


def _timestamp(text: str, cfg: Verification, now: float, name: str, unit: float = 1.0) -> str:
    """``text`` (a number of seconds, or of ``1/unit`` seconds) inside the tolerance."""
    try:
        value = float(text.strip()) / unit
    except ValueError:
        raise Refused("missing_timestamp", f"the {name} timestamp is not a number") from None
    if not abs(now - value) <= cfg.tolerance_s:  # also refuses nan and inf
        off = f"{round(now - value)} s" if abs(value) < 1e15 else "far"
        raise Refused(
            "stale_timestamp",
            f"the {name} timestamp is {off} from now, beyond the tolerance of {cfg.tolerance_s} s",
        )
    return text.strip()


def _optional(req: Signed, name: str) -> str | None:
    return req.headers.get(name) or None


# ---------------------------------------------------------------- the schemes


def _standard_key(secret: str) -> tuple[str, bytes] | None:
    """("v1", HMAC key) for ``whsec_…``, ("v1a", ed25519 public key) for ``whpk_…``."""
    kind, text = ("v1a", secret[5:]) if secret.startswith("whpk_") else ("v1", secret)
    text = text.removeprefix("whsec_")
    try:
        # As the reference library does: unpadded base64 is accepted.
        key = base64.b64decode(text + "==", validate=False)
    except (binascii.Error, ValueError):
        return None
    if not key or (kind == "v1a" and len(key) != 32):
        return None
    return kind, key


def _standard(cfg: Verification, req: Signed, now: float) -> str | None:
    # Svix sends the same three under its own names; the standard's win.
    msg_id = _optional(req, "webhook-id") or _optional(req, "svix-id")
    stamp = _optional(req, "webhook-timestamp") or _optional(req, "svix-timestamp")
    sigs = _optional(req, "webhook-signature") or _optional(req, "svix-signature")
    if not (msg_id and stamp and sigs):
        raise Refused(
            "missing_signature",
            "the webhook-id, webhook-timestamp and webhook-signature headers are required",
        )
    _timestamp(stamp, cfg, now, "webhook-timestamp")
    content = f"{msg_id}.{stamp.strip()}.".encode() + req.body
    given: dict[str, list[bytes | None]] = {"v1": [], "v1a": []}
    for item in sigs.split(" ")[:MAX_SIGNATURES]:
        version, _, sig = item.partition(",")
        if version in given:
            given[version].append(_decoded(sig, "base64"))
    found = False
    for secret in cfg.secrets:
        key = _standard_key(secret)
        if key is None:
            continue
        if key[0] == "v1":
            found |= _matches(lambda k: _digest("sha256", k, content), [key[1]], given["v1"])
        else:
            found |= any(_ed25519(key[1], sig, content) for sig in given["v1a"])
    if not found:
        raise Refused("bad_signature", "no webhook-signature matches")
    return msg_id


def _ed25519(public: bytes, signature: bytes | None, content: bytes) -> bool:
    if signature is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, content)
    except (InvalidSignature, ValueError):
        return False
    return True


def _hub_sha256(cfg: Verification, req: Signed, name: str) -> None:
    """GitHub's and Meta's ``X-Hub-Signature-256: sha256=<hex>`` over the body."""
    value = _header(req, "x-hub-signature-256")
    sig = value.removeprefix("sha256=") if value.startswith("sha256=") else None
    given = [None if sig is None else _decoded(sig, "hex")]
    _check(lambda k: _digest("sha256", k, req.body), cfg, given, name)


def _github(cfg: Verification, req: Signed, now: float) -> str | None:
    _hub_sha256(cfg, req, "X-Hub-Signature-256")
    return _optional(req, "x-github-delivery")


def _meta(cfg: Verification, req: Signed, now: float) -> str | None:
    _hub_sha256(cfg, req, "X-Hub-Signature-256 (app secret)")
    return None


class _StripeEvent(msgspec.Struct):
    id: str | None = None


def _stripe(cfg: Verification, req: Signed, now: float) -> str | None:
    stamp, sigs = "", []
    for item in _header(req, "stripe-signature").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":  # v0 is Stripe's test-mode scheme of old: not accepted
            sigs.append(_decoded(value, "hex"))
    if not stamp:
        raise Refused("missing_timestamp", "the Stripe-Signature header has no t=")
    _timestamp(stamp, cfg, now, "Stripe-Signature")
    content = stamp.encode() + b"." + req.body
    _check(lambda k: _digest("sha256", k, content), cfg, sigs, "Stripe-Signature v1")
    try:  # the event id: a re-sent event (Stripe retries) is a duplicate
        return msgspec.json.decode(req.body, type=_StripeEvent).id
    except msgspec.DecodeError:
        return None


def _shopify(cfg: Verification, req: Signed, now: float) -> str | None:
    given = [_decoded(_header(req, "x-shopify-hmac-sha256"), "base64")]
    _check(lambda k: _digest("sha256", k, req.body), cfg, given, "X-Shopify-Hmac-Sha256")
    return _optional(req, "x-shopify-webhook-id") or _optional(req, "x-shopify-event-id")


def _v0(cfg: Verification, req: Signed, now: float, sig_header: str, ts_header: str) -> str:
    """Slack's and Zoom's ``v0=<hex>`` of ``v0:<timestamp>:<body>``; returns the
    signature as the replay key (see :func:`_signature_id`)."""
    value = _header(req, sig_header)
    stamp = req.headers.get(ts_header, "")
    if not stamp:
        raise Refused("missing_timestamp", f"the {ts_header} header is missing")
    stamp = _timestamp(stamp, cfg, now, ts_header)
    content = b"v0:" + stamp.encode() + b":" + req.body
    given = [_decoded(value[3:], "hex") if value.startswith("v0=") else None]
    _check(lambda k: _digest("sha256", k, content), cfg, given, sig_header)
    return _signature_id(value)


def _signature_id(signature: str) -> str:
    """The replay key of a scheme that signs a timestamp but sends no message id
    (Slack, Zoom, HubSpot): the same signature is the same timestamp and body, so a
    replay inside the tolerance is a duplicate, while the sender's own retries (a new
    timestamp) are not."""
    return "sig:" + hashlib.sha256(signature.encode()).hexdigest()[:32]


def _slack(cfg: Verification, req: Signed, now: float) -> str | None:
    return _v0(cfg, req, now, "x-slack-signature", "x-slack-request-timestamp")


def _zoom(cfg: Verification, req: Signed, now: float) -> str | None:
    return _v0(cfg, req, now, "x-zm-signature", "x-zm-request-timestamp")


def _twilio(cfg: Verification, req: Signed, now: float) -> str | None:
    given = [_decoded(_header(req, "x-twilio-signature"), "base64")]
    query = dict(parse_qsl(urlsplit(req.url).query, keep_blank_values=True))
    if "bodySHA256" in query:
        # A JSON (non-form) body: the URL carries the body's hash and is what is signed.
        if not hmac.compare_digest(hashlib.sha256(req.body).hexdigest(), query["bodySHA256"]):
            raise Refused("bad_signature", "the body does not match bodySHA256")
        params = b""
    else:
        params = b"".join(k.encode() + v.encode() for k, v in _sorted_form(req))
    # Twilio signs the URL as it was configured: with or without the default port.
    urls = [_with_port(req.url, port) for port in (False, True)]
    expected = [lambda k, u=u: _digest("sha1", k, u.encode() + params) for u in urls]
    if not any(_matches(e, [s.encode() for s in cfg.secrets], given) for e in expected):
        raise Refused("bad_signature", "the X-Twilio-Signature signature does not match")
    return _optional(req, "i-twilio-idempotency-token")


def _sorted_form(req: Signed) -> list[tuple[str, str]]:
    """The POST parameters as Twilio's validator orders them: by name, then each name's
    distinct values in order (a value repeated is signed once)."""
    if req.method != "POST" or media_type(req.content_type) != "application/x-www-form-urlencoded":
        return []
    try:
        text = req.body.decode()
    except UnicodeDecodeError:
        return []
    values: dict[str, set[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, max_num_fields=10_000):
        values.setdefault(name, set()).add(value)
    return [(name, value) for name in sorted(values) for value in sorted(values[name])]


def _with_port(url: str, port: bool) -> str:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if port and parts.port is None and default:
        netloc = f"{host}:{default}"
    elif not port and parts.port == default:
        netloc = host
    else:
        return url
    return urlunsplit(parts._replace(netloc=netloc))


# HubSpot v3 signs the URI with these escapes decoded (its documentation's list).
_HUBSPOT_DECODE: Final = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_HUBSPOT_ESCAPE = re.compile("|".join(_HUBSPOT_DECODE), re.IGNORECASE)


def _hubspot(cfg: Verification, req: Signed, now: float) -> str | None:
    given = [_decoded(_header(req, "x-hubspot-signature-v3"), "base64")]
    stamp = req.headers.get("x-hubspot-request-timestamp", "")
    if not stamp:
        raise Refused("missing_timestamp", "the X-HubSpot-Request-Timestamp header is missing")
    stamp = _timestamp(stamp, cfg, now, "X-HubSpot-Request-Timestamp", unit=1000.0)
    uri = _HUBSPOT_ESCAPE.sub(lambda m: _HUBSPOT_DECODE[m.group(0).upper()], req.url)
    content = req.method.encode() + uri.encode() + req.body + stamp.encode()
    _check(lambda k: _digest("sha256", k, content), cfg, given, "X-HubSpot-Signature-v3")
    return _signature_id(req.headers.get("x-hubspot-signature-v3", ""))


class _MailgunSignature(msgspec.Struct):
    timestamp: str
    token: str
    signature: str


class _MailgunEvent(msgspec.Struct):
    signature: _MailgunSignature


def _mailgun(cfg: Verification, req: Signed, now: float) -> str | None:
    """Mailgun signs inside the body: JSON ``{"signature": {...}, "event-data": ...}``
    (webhooks), or ``timestamp``/``token``/``signature`` form fields (routes)."""
    try:
        found: _MailgunSignature | None = msgspec.json.decode(
            req.body, type=_MailgunEvent
        ).signature
    except msgspec.DecodeError:
        try:
            form = dict(parse_qsl(req.body.decode(), max_num_fields=10_000))
            found = _MailgunSignature(form["timestamp"], form["token"], form["signature"])
        except (UnicodeDecodeError, KeyError, ValueError):
            found = None
    if found is None:
        raise Refused("missing_signature", "the body has no Mailgun signature")
    _timestamp(found.timestamp, cfg, now, "Mailgun signature")
    content = (found.timestamp + found.token).encode()
    given = [_decoded(found.signature, "hex")]
    _check(lambda k: _digest("sha256", k, content), cfg, given, "Mailgun")
    return found.token  # Mailgun: a token seen again is a replay


def _hmac(cfg: Verification, req: Signed, now: float) -> str | None:
    assert cfg.header  # validated at save
    value = _header(req, cfg.header)
    sig = value[len(cfg.prefix) :] if value.startswith(cfg.prefix) else None
    parts: dict[str, bytes] = {"body": req.body, "url": req.url.encode()}
    parts["method"] = req.method.encode()
    msg_id = _optional(req, cfg.id_header.lower()) if cfg.id_header else None
    if cfg.timestamp_header:
        stamp = req.headers.get(cfg.timestamp_header.lower(), "")
        if not stamp:
            raise Refused("missing_timestamp", f"the {cfg.timestamp_header} header is missing")
        # Seconds, or milliseconds when the number is that large (both are in use).
        unit = 1000.0 if stamp.strip().isdigit() and len(stamp.strip()) >= 12 else 1.0
        parts["timestamp"] = _timestamp(stamp, cfg, now, cfg.timestamp_header, unit).encode()
    if "{id}" in cfg.signed and msg_id is None:
        raise Refused("missing_signature", f"the {cfg.id_header} header is missing")
    parts["id"] = (msg_id or "").encode()
    # "t={timestamp}.{body}" → ["t=", "timestamp", ".", "body", ""]: text, part, text…
    split = _PLACEHOLDER.split(cfg.signed)
    message = b"".join(parts[x] if k % 2 else x.encode() for k, x in enumerate(split))
    given = [None if sig is None else _decoded(sig, cfg.encoding)]
    _check(lambda k: _digest(cfg.algorithm, k, message), cfg, given, cfg.header)
    return msg_id


def _same(given: str, secrets: Sequence[str]) -> bool:
    """Constant time in the secrets' lengths too: digests are compared, not strings."""
    want = hashlib.sha256(given.encode()).digest()
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(want, hashlib.sha256(secret.encode()).digest())
    return found


def _basic(cfg: Verification, req: Signed, now: float) -> str | None:
    value = req.headers.get("authorization", "")
    kind, _, encoded = value.partition(" ")
    if kind.lower() != "basic" or not encoded:
        raise Refused("missing_credentials", "Basic credentials are required")
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Refused(
            "bad_credentials", "the Basic credentials are not base64 user:password"
        ) from None
    ok = _same(user, [cfg.username or ""]) & _same(password, cfg.secrets)
    if not (sep and ok):
        raise Refused("bad_credentials", "wrong username or password")
    return None


def _api_key(cfg: Verification, req: Signed, now: float) -> str | None:
    if cfg.header:
        given, where = req.headers.get(cfg.header.lower(), ""), f"the {cfg.header} header"
    else:
        given = next((v for k, v in req.query if k == cfg.query_param), "")
        where = f"the {cfg.query_param} query parameter"
    if not given:
        raise Refused("missing_credentials", f"{where} is missing")
    if not _same(given, cfg.secrets):
        raise Refused("bad_credentials", f"{where} holds no valid key")
    return None


_SCHEMES: Final[dict[str, Callable[[Verification, Signed, float], str | None]]] = {
    "standard": _standard,
    "github": _github,
    "stripe": _stripe,
    "shopify": _shopify,
    "slack": _slack,
    "twilio": _twilio,
    "meta": _meta,
    "zoom": _zoom,
    "hubspot": _hubspot,
    "mailgun": _mailgun,
    "hmac": _hmac,
    "basic": _basic,
    "api_key": _api_key,
}
assert set(_SCHEMES) == set(SCHEMES)


# ---------------------------------------------------------------- secrets shown


def keep_secrets(sent: list[str], stored: list[str]) -> list[str] | None:
    """The secrets to save when a client sends ``sent``: a redacted one ("…abcd", as the
    API showed it) is replaced by the stored secret it stands for; None when a redacted
    value stands for no stored secret (or for more than one: ambiguous)."""
    out: list[str] = []
    for value in sent:
        if not is_redacted(value):
            out.append(value)
            continue
        match = [s for s in stored if redact_secret(s) == value]
        if len(match) != 1:
            return None
        out.append(match[0])
    return out


def shown(cfg: Verification) -> Verification:
    """``cfg`` as the API and the versions list show it: secrets redacted."""
    return msgspec.structs.replace(cfg, secrets=[redact_secret(s) for s in cfg.secrets])
