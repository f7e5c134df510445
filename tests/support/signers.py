"""Senders that sign as each provider's documentation says, written from the docs and
not from ``libs.domain.verification`` (which they test).  Standard Webhooks is signed
by its reference library, ``standardwebhooks``.

Each scheme has the verification config a user would save and a signer: given the
secret, the body, the time and the public URL, the request a provider would send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import standardwebhooks


@dataclass
class Sent:
    """What a provider sends: headers, body and the query appended to the URL."""

    headers: dict[str, str]
    body: bytes
    query: str = ""
    content_type: str = "application/json"
    extra: dict[str, str] = field(default_factory=dict)


Signer = Callable[[str, bytes, int, str], Sent]  # (secret, body, unix now, url) → Sent


def _hex(algorithm: str, key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, algorithm).hexdigest()


def _b64(algorithm: str, key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, algorithm).digest()).decode()


def standard(secret: str, body: bytes, now: int, url: str) -> Sent:
    # https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
    msg_id = f"msg_{hashlib.sha256(body + str(now).encode()).hexdigest()[:24]}"
    sig = standardwebhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(now, tz=UTC), body.decode()
    )
    return Sent(
        {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": sig}, body
    )


def github(secret: str, body: bytes, now: int, url: str) -> Sent:
    # docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
    return Sent(
        {
            "X-Hub-Signature-256": "sha256=" + _hex("sha256", secret, body),
            "X-GitHub-Delivery": hashlib.md5(body).hexdigest(),
            "X-GitHub-Event": "push",
        },
        body,
    )


def meta(secret: str, body: bytes, now: int, url: str) -> Sent:
    # developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads
    return Sent({"X-Hub-Signature-256": "sha256=" + _hex("sha256", secret, body)}, body)


def stripe(secret: str, body: bytes, now: int, url: str) -> Sent:
    # docs.stripe.com/webhooks#verify-manually: v1 = HMAC-SHA256(secret, "t.body")
    sig = _hex("sha256", secret, f"{now}.".encode() + body)
    return Sent({"Stripe-Signature": f"t={now},v1={sig}"}, body)


def shopify(secret: str, body: bytes, now: int, url: str) -> Sent:
    # shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
    return Sent(
        {
            "X-Shopify-Hmac-Sha256": _b64("sha256", secret, body),
            "X-Shopify-Webhook-Id": hashlib.md5(body).hexdigest(),
            "X-Shopify-Topic": "orders/create",
        },
        body,
    )


def slack(secret: str, body: bytes, now: int, url: str) -> Sent:
    # api.slack.com/authentication/verifying-requests-from-slack
    sig = "v0=" + _hex("sha256", secret, f"v0:{now}:".encode() + body)
    return Sent({"X-Slack-Signature": sig, "X-Slack-Request-Timestamp": str(now)}, body)


def zoom(secret: str, body: bytes, now: int, url: str) -> Sent:
    # developers.zoom.us/docs/api/webhooks/#verify-with-zooms-header
    sig = "v0=" + _hex("sha256", secret, f"v0:{now}:".encode() + body)
    return Sent({"x-zm-signature": sig, "x-zm-request-timestamp": str(now)}, body)


def twilio(secret: str, body: bytes, now: int, url: str) -> Sent:
    # twilio.com/docs/usage/webhooks/webhooks-security: the URL, then each POST
    # parameter sorted by name, name and value appended; HMAC-SHA1; base64.
    params = dict(json.loads(body)) if body else {}
    form = urlencode(params).encode()
    signed = url + "".join(k + str(params[k]) for k in sorted(params))
    return Sent(
        {"X-Twilio-Signature": _b64("sha1", secret, signed.encode())},
        form,
        content_type="application/x-www-form-urlencoded",
    )


def hubspot(secret: str, body: bytes, now: int, url: str) -> Sent:
    # developers.hubspot.com/docs/api/webhooks/validating-requests (v3): method + URI +
    # body + timestamp (milliseconds), HMAC-SHA256, base64.
    ms = str(now * 1000)
    sig = _b64("sha256", secret, b"POST" + url.encode() + body + ms.encode())
    return Sent({"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ms}, body)


def mailgun(secret: str, body: bytes, now: int, url: str) -> Sent:
    # documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks
    token = hashlib.sha256(body + str(now).encode()).hexdigest()[:50]
    signature = {
        "timestamp": str(now),
        "token": token,
        "signature": _hex("sha256", secret, f"{now}{token}".encode()),
    }
    event = json.loads(body) if body else {}
    return Sent({}, json.dumps({"signature": signature, "event-data": event}).encode())


def generic_hmac(secret: str, body: bytes, now: int, url: str) -> Sent:
    # As GENERIC below configures it: sha512, base64, "t=<ts>.<body>", prefixed.
    sig = _b64("sha512", secret, f"t={now}.".encode() + body)
    return Sent({"X-Signature": "sig=" + sig, "X-Timestamp": str(now)}, body)


def basic(secret: str, body: bytes, now: int, url: str) -> Sent:
    pair = base64.b64encode(f"shop:{secret}".encode()).decode()
    return Sent({"Authorization": f"Basic {pair}"}, body)


def api_key(secret: str, body: bytes, now: int, url: str) -> Sent:
    return Sent({}, body, query=urlencode({"key": secret}))


GENERIC: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha512",
    "encoding": "base64",
    "header": "X-Signature",
    "prefix": "sig=",
    "signed": "t={timestamp}.{body}",
    "timestamp_header": "X-Timestamp",
}

# scheme → (the verification options besides secrets, the signer, whether it has a
# timestamp to go stale)
SCHEMES: dict[str, tuple[dict[str, Any], Signer, bool]] = {
    "standard": ({"scheme": "standard"}, standard, True),
    "github": ({"scheme": "github"}, github, False),
    "stripe": ({"scheme": "stripe"}, stripe, True),
    "shopify": ({"scheme": "shopify"}, shopify, False),
    "slack": ({"scheme": "slack"}, slack, True),
    "twilio": ({"scheme": "twilio"}, twilio, False),
    "meta": ({"scheme": "meta"}, meta, False),
    "zoom": ({"scheme": "zoom"}, zoom, True),
    "hubspot": ({"scheme": "hubspot"}, hubspot, True),
    "mailgun": ({"scheme": "mailgun"}, mailgun, True),
    "hmac": (GENERIC, generic_hmac, True),
    "basic": ({"scheme": "basic", "username": "shop"}, basic, False),
    "api_key": ({"scheme": "api_key", "query_param": "key"}, api_key, False),
}


def secret_for(scheme: str, seed: str) -> str:
    """A secret of the form the scheme uses (Standard Webhooks: ``whsec_`` base64)."""
    raw = hashlib.sha256(seed.encode()).digest()
    if scheme == "standard":
        return "whsec_" + base64.b64encode(raw).decode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tampered(sent: Sent) -> Sent:
    """The same request with its content changed after signing (a form value for
    Twilio, the signed token for Mailgun, whose signature does not cover the body)."""
    if sent.content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(sent.body.decode(), keep_blank_values=True)
        pairs.append(("Injected", "1"))
        return Sent(sent.headers, urlencode(pairs).encode(), sent.query, sent.content_type)
    if sent.body.startswith(b'{"signature"'):
        doc = json.loads(sent.body)
        doc["signature"]["token"] = doc["signature"]["token"][::-1]
        return Sent(sent.headers, json.dumps(doc).encode(), sent.query, sent.content_type)
    if sent.query:
        return Sent(sent.headers, sent.body, "key=not-the-key", sent.content_type)
    if any(h.lower() == "authorization" for h in sent.headers):
        bad = base64.b64encode(b"shop:guessed").decode()
        return Sent({"Authorization": f"Basic {bad}"}, sent.body, sent.query, sent.content_type)
    return Sent(sent.headers, sent.body + b" ", sent.query, sent.content_type)
