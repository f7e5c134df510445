"""The verification schemes, handshakes and client addresses as pure functions: the
providers' published test vectors, the reference library of Standard Webhooks, and
properties over generated bodies (any bytes) for every scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import standardwebhooks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.domain import addresses, handshakes, verification
from libs.domain.verification import Refused, Signed, Verification, verify
from tests.support import signers

URL = "https://hooks.example.com/c/tok"


def _refused(cfg: Verification, req: Signed, now: float) -> str:
    with pytest.raises(Refused) as caught:
        verify(cfg, req, now)
    assert caught.value.status in (401, 403)
    return caught.value.code


def _signed(sent: signers.Sent, url: str = URL) -> Signed:
    target = f"{url}?{sent.query}" if sent.query else url
    query = [tuple(kv.split("=", 1)) for kv in sent.query.split("&") if kv]
    return Signed(
        "POST",
        target,
        {k.lower(): v for k, v in sent.headers.items()},
        sent.body,
        sent.content_type,
        query=query,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- published vectors

# Each: (scheme options, request, now) exactly as the provider's documentation shows it.
DOC_VECTORS: dict[str, tuple[dict[str, Any], Signed, float]] = {
    # docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    # ("Testing the webhook payload validation")
    "github": (
        {"scheme": "github", "secrets": ["It's a Secret to Everybody"]},
        Signed(
            "POST",
            URL,
            {
                "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a3"
                "7570b6d7586c22c46f4379c8b043e17"
            },
            b"Hello, World!",
        ),
        0,
    ),
    # The Standard Webhooks / Svix documented example (standard-webhooks spec).
    "standard": (
        {"scheme": "standard", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]},
        Signed(
            "POST",
            URL,
            {
                "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "webhook-timestamp": "1614265330",
                "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            },
            b'{"test": 2432232314}',
        ),
        1614265330,
    ),
    # api.slack.com/authentication/verifying-requests-from-slack (the worked example)
    "slack": (
        {"scheme": "slack", "secrets": ["8f742231b10e8888abcd99yyyzzz85a5"]},
        Signed(
            "POST",
            URL,
            {
                "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21"
                "a10bd27519666489c69b503",
                "x-slack-request-timestamp": "1531420618",
            },
            b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
            "application/x-www-form-urlencoded",
        ),
        1531420618,
    ),
}  # fmt: skip


def _twilio(url: str, params: dict[str, Any], signature: str, called: str | None = None) -> Any:
    form = urlencode(
        [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
    )
    return (
        {"scheme": "twilio", "secrets": ["12345"]},
        Signed(
            "POST",
            called or url,
            {"x-twilio-signature": signature},
            form.encode(),
            "application/x-www-form-urlencoded",
        ),
        0,
    )


TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
# twilio.com/docs/usage/webhooks/webhooks-security (auth token 12345)
DOC_VECTORS["twilio-docs"] = _twilio(
    TWILIO_URL,
    {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    },
    "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
)
# twilio/twilio-python tests/unit/test_request_validator.py (MIT)
SDK_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
DOC_VECTORS["twilio-sdk"] = _twilio(TWILIO_URL, SDK_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
DOC_VECTORS["twilio-sdk-repeated-values"] = _twilio(
    TWILIO_URL,
    {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234", "1234"]},
    "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
)
# Configured with the port, called without it (and the reverse): both verify.
DOC_VECTORS["twilio-sdk-port-443"] = _twilio(
    "https://mycompany.com:443/myapp.php?foo=1&bar=2",
    SDK_PARAMS,
    "kvajT1Ptam85bY51eRf/AJRuM3w=",
    called=TWILIO_URL,
)
DOC_VECTORS["twilio-sdk-port-80"] = _twilio(
    "http://mycompany.com:80/myapp.php?foo=1&bar=2",
    SDK_PARAMS,
    "0ZXoZLH/DfblKGATFgpif+LLRf4=",
    called="http://mycompany.com/myapp.php?foo=1&bar=2",
)
_BODY = b'{"property": "value", "boolean": true}'
DOC_VECTORS["twilio-sdk-json-body"] = (
    {"scheme": "twilio", "secrets": ["12345"]},
    Signed(
        "POST",
        TWILIO_URL + "&bodySHA256=" + hashlib.sha256(_BODY).hexdigest(),
        {"x-twilio-signature": "a9nBmqA0ju/hNViExpshrM61xv4="},
        _BODY,
        "application/json",
    ),
    0,
)
# HubSpot/hubspot-api-python tests (Apache-2.0): signature v3
DOC_VECTORS["hubspot-v3-sdk"] = (
    {"scheme": "hubspot", "secrets": ["yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"]},
    Signed("POST", "https://www.example.com/webhook_uri",
           {"x-hubspot-signature-v3": "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=",
            "x-hubspot-request-timestamp": "1693657560000"},
           b"{'example_field':'example_value'}"),
    1693657560,
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(DOC_VECTORS))
def test_the_providers_published_examples_verify(name: str) -> None:
    options, req, now = DOC_VECTORS[name]
    cfg = Verification(**options)
    verify(cfg, req, now)
    # …and one byte more, or another secret, does not.
    other = Signed(req.method, req.url, req.headers, req.body + b" ", req.content_type)
    assert _refused(cfg, other, now) == "bad_signature"
    wrong = Verification(**{**options, "secrets": [options["secrets"][0][:-2] + "xx"]})
    assert _refused(wrong, req, now) == "bad_signature"


def test_the_standard_webhooks_example_returns_its_message_id_and_goes_stale() -> None:
    options, req, now = DOC_VECTORS["standard"]
    cfg = Verification(**options)
    assert verify(cfg, req, now) == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert verify(cfg, req, now + 300) == "msg_p5jXN8AQM9LWM0D4loKWxJek"  # the edge is in
    assert _refused(cfg, req, now + 301) == "stale_timestamp"
    assert _refused(cfg, req, now - 301) == "stale_timestamp"  # from the future, too


# ---------------------------------------------------------------- properties


bodies = st.binary(max_size=2048)
texts = st.text(max_size=200)
slow = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@slow
@given(body=texts, msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,32}", fullmatch=True))
def test_standard_accepts_what_the_reference_library_signs(body: str, msg_id: str) -> None:
    secret = "whsec_" + base64.b64encode(hashlib.sha256(msg_id.encode()).digest()).decode()
    now = 1_700_000_000
    sig = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(now, UTC), body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": sig}
    cfg = Verification(scheme="standard", secrets=[secret])
    assert verify(cfg, Signed("POST", URL, headers, body.encode()), now) == msg_id
    forged = Signed("POST", URL, headers, body.encode() + b"!")
    assert _refused(cfg, forged, now) == "bad_signature"


@slow
@given(body=bodies)
def test_standard_verifies_bytes_that_are_no_text(body: bytes) -> None:
    """The reference library can only take text; the spec signs bytes."""
    key = b"\x01" * 24
    secret = "whsec_" + base64.b64encode(key).decode()
    content = b"msg_1.1700000000." + body
    sig = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": sig}
    cfg = Verification(scheme="standard", secrets=[secret])
    assert verify(cfg, Signed("POST", URL, headers, body), 1_700_000_000) == "msg_1"


@slow
@given(data=st.dictionaries(st.text(min_size=1, max_size=20), texts, max_size=8),
       scheme=st.sampled_from(sorted(signers.SCHEMES)))  # fmt: skip
def test_every_scheme_accepts_its_senders_request_and_refuses_it_changed(
    data: dict[str, str], scheme: str
) -> None:
    options, sign, stamped = signers.SCHEMES[scheme]
    secret = signers.secret_for(scheme, repr(sorted(data.items())))
    body = json.dumps(data).encode()
    now = 1_700_000_000
    cfg = Verification(**{**options, "secrets": [secret]})
    verify(cfg, _signed(sign(secret, body, now, URL)), now)
    assert _refused(cfg, _signed(signers.tampered(sign(secret, body, now, URL))), now)
    assert _refused(cfg, _signed(signers.Sent({}, body)), now).startswith("missing_")
    if stamped:
        late = _signed(sign(secret, body, now - 301, URL))
        assert _refused(cfg, late, now) == "stale_timestamp"


@pytest.mark.parametrize("scheme", sorted(signers.SCHEMES))
def test_two_active_secrets_each_let_the_sender_in_and_a_third_does_not(scheme: str) -> None:
    options, sign, _ = signers.SCHEMES[scheme]
    old, new, other = (signers.secret_for(scheme, s) for s in ("old", "new", "other"))
    cfg = Verification(**{**options, "secrets": [old, new]})
    body = b'{"n": 1}'
    for secret in (old, new):
        verify(cfg, _signed(sign(secret, body, 1_700_000_000, URL)), 1_700_000_000)
    refused = _refused(cfg, _signed(sign(other, body, 1_700_000_000, URL)), 1_700_000_000)
    assert refused in ("bad_signature", "bad_credentials")


# ---------------------------------------------------------------- scheme details


def test_standard_takes_a_list_of_signatures_and_ed25519_public_keys() -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    content = b"msg_2.1700000000.{}"
    good = "v1a," + base64.b64encode(private.sign(content)).decode()
    bad = "v1a," + base64.b64encode(Ed25519PrivateKey.generate().sign(content)).decode()
    headers = {"webhook-id": "msg_2", "webhook-timestamp": "1700000000"}
    cfg = Verification(scheme="standard", secrets=["whpk_" + base64.b64encode(public).decode()])
    req = Signed("POST", URL, headers | {"webhook-signature": f"v1,AAAA {bad} {good}"}, b"{}")
    assert verify(cfg, req, 1_700_000_000) == "msg_2"
    req = Signed("POST", URL, headers | {"webhook-signature": bad}, b"{}")
    assert _refused(cfg, req, 1_700_000_000) == "bad_signature"


@pytest.mark.parametrize("scheme", ["slack", "zoom", "hubspot"])
def test_a_timestamped_scheme_without_ids_keys_replays_by_signature(scheme: str) -> None:
    options, sign, _ = signers.SCHEMES[scheme]
    cfg = Verification(**{**options, "secrets": ["s"]})
    first = verify(cfg, _signed(sign("s", b"{}", 1_700_000_000, URL)), 1_700_000_000)
    again = verify(cfg, _signed(sign("s", b"{}", 1_700_000_000, URL)), 1_700_000_010)
    retry = verify(cfg, _signed(sign("s", b"{}", 1_700_000_005, URL)), 1_700_000_010)
    assert first is not None and first == again  # a replay: the same key
    assert retry != first  # the sender's retry, signed anew: another


def test_stripe_reads_every_v1_and_returns_the_event_id() -> None:
    secret, now = "whsec_test_secret", 1_700_000_000
    body = b'{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event"}'
    good = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={now},v1={'0' * 64},v0={good},v1={good}"
    cfg = Verification(scheme="stripe", secrets=[secret])
    req = Signed("POST", URL, {"stripe-signature": header}, body)
    assert verify(cfg, req, now) == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    only_v0 = Signed("POST", URL, {"stripe-signature": f"t={now},v0={good}"}, body)
    assert _refused(cfg, only_v0, now) == "bad_signature"  # v0 is not accepted
    no_t = Signed("POST", URL, {"stripe-signature": f"v1={good}"}, body)
    assert _refused(cfg, no_t, now) == "missing_timestamp"


def test_twilio_signs_the_url_as_configured_with_or_without_the_default_port() -> None:
    token = "12345"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    signed = (url + "".join(k + params[k] for k in sorted(params))).encode()
    sig = base64.b64encode(hmac.new(token.encode(), signed, hashlib.sha1).digest()).decode()
    form = "&".join(f"{k}={v}" for k, v in params.items()).replace("+", "%2B").encode()
    cfg = Verification(scheme="twilio", secrets=[token])
    for called in (url, "https://mycompany.com:443/myapp.php?foo=1&bar=2"):
        req = Signed(
            "POST", called, {"x-twilio-signature": sig}, form, "application/x-www-form-urlencoded"
        )
        verify(cfg, req, 0)
    elsewhere = Signed(
        "POST", url.replace("myapp", "other"), {"x-twilio-signature": sig}, form,
        "application/x-www-form-urlencoded",
    )  # fmt: skip
    assert _refused(cfg, elsewhere, 0) == "bad_signature"


def test_twilio_json_bodies_are_signed_through_body_sha256() -> None:
    body = b'{"event": "message.sent"}'
    url = f"{URL}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    sig = base64.b64encode(hmac.new(b"tok", url.encode(), hashlib.sha1).digest()).decode()
    cfg = Verification(scheme="twilio", secrets=["tok"])
    verify(cfg, Signed("POST", url, {"x-twilio-signature": sig}, body, "application/json"), 0)
    changed = Signed("POST", url, {"x-twilio-signature": sig}, body + b" ", "application/json")
    assert _refused(cfg, changed, 0) == "bad_signature"


def test_hubspot_decodes_the_escapes_its_documentation_lists() -> None:
    secret, ms = "client-secret", "1700000000000"
    sent_url = "https://hooks.example.com/c/tok?email=a%40b.com&path=%2Fx%3Fy"
    signed_url = "https://hooks.example.com/c/tok?email=a@b.com&path=/x?y"
    body = b'[{"eventId": 1}]'
    content = b"POST" + signed_url.encode() + body + ms.encode()
    sig = base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()
    headers = {"x-hubspot-signature-v3": sig, "x-hubspot-request-timestamp": ms}
    cfg = Verification(scheme="hubspot", secrets=[secret])
    verify(cfg, Signed("POST", sent_url, headers, body), 1_700_000_100)
    assert (
        _refused(cfg, Signed("POST", sent_url, headers, body), 1_700_000_400) == "stale_timestamp"
    )


def test_mailgun_reads_form_fields_too_and_returns_the_token() -> None:
    key, ts, token = "key-abc", "1700000000", "a" * 50
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    form = f"timestamp={ts}&token={token}&signature={sig}&recipient=x%40y.com".encode()
    cfg = Verification(scheme="mailgun", secrets=[key])
    req = Signed("POST", URL, {}, form, "application/x-www-form-urlencoded")
    assert verify(cfg, req, 1_700_000_000) == token


@pytest.mark.parametrize(
    ("signed", "message"),
    [
        ("{body}", b"B"),
        ("{timestamp}.{body}", b"100.B"),
        ("{method} {url}\n{id}:{body}", b"POST " + URL.encode() + b"\nm-1:B"),
    ],
)
def test_the_generic_hmac_signs_what_its_template_says(signed: str, message: bytes) -> None:
    cfg = Verification(
        scheme="hmac", secrets=["k"], header="X-Sig", algorithm="sha1", encoding="hex",
        prefix="sha1=", signed=signed, timestamp_header="X-Ts", id_header="X-Id",
    )  # fmt: skip
    sig = "sha1=" + hmac.new(b"k", message, hashlib.sha1).hexdigest()
    headers = {"x-sig": sig, "x-ts": "100", "x-id": "m-1"}
    assert verify(cfg, Signed("POST", URL, headers, b"B"), 100) == "m-1"
    unprefixed = headers | {"x-sig": sig.removeprefix("sha1=")}
    assert _refused(cfg, Signed("POST", URL, unprefixed, b"B"), 100) == "bad_signature"


def test_milliseconds_timestamps_are_read_as_such() -> None:
    cfg = Verification(scheme="hmac", secrets=["k"], header="X-Sig", timestamp_header="X-Ts")
    sig = hmac.new(b"k", b"B", hashlib.sha256).hexdigest()
    req = Signed("POST", URL, {"x-sig": sig, "x-ts": "1700000000123"}, b"B")
    verify(cfg, req, 1_700_000_000)
    for stamp in ("nan", "inf", "-1e999", "12abc"):
        req = Signed("POST", URL, {"x-sig": sig, "x-ts": stamp}, b"B")
        assert _refused(cfg, req, 1_700_000_000) in ("stale_timestamp", "missing_timestamp")


def test_basic_and_api_key_compare_the_whole_credential() -> None:
    cfg = Verification(scheme="basic", secrets=["pw-1", "pw-2"], username="shop")

    def basic(pair: bytes) -> Signed:
        return Signed(
            "POST", URL, {"authorization": "Basic " + base64.b64encode(pair).decode()}, b""
        )

    for pair in (b"shop:pw-1", b"shop:pw-2"):
        verify(cfg, basic(pair), 0)
    for pair in (b"shop:pw-", b"shop:pw-1x", b"shopx:pw-1", b"shop", b":pw-1"):
        assert _refused(cfg, basic(pair), 0) == "bad_credentials"
    assert _refused(cfg, Signed("POST", URL, {}, b""), 0) == "missing_credentials"
    keyed = Verification(scheme="api_key", secrets=["k-1"], header="X-Key")
    verify(keyed, Signed("POST", URL, {"x-key": "k-1"}, b""), 0)
    assert _refused(keyed, Signed("POST", URL, {"x-key": "k-12"}, b""), 0) == "bad_credentials"


# ---------------------------------------------------------------- at save


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"scheme": "github"}, "secrets"),
        ({"scheme": "github", "secrets": ["a", "b", "c"]}, "secrets"),
        ({"scheme": "github", "secrets": [""]}, "secrets[0]"),
        ({"scheme": "standard", "secrets": ["whpk_AAAA"]}, "secrets[0]"),
        ({"scheme": "github", "secrets": ["a"], "tolerance_s": 0}, "tolerance_s"),
        ({"scheme": "hmac", "secrets": ["a"]}, "header"),
        ({"scheme": "hmac", "secrets": ["a"], "header": "X", "signed": "{ts}"}, "signed"),
        ({"scheme": "hmac", "secrets": ["a"], "header": "X", "signed": "{timestamp}"},
         "timestamp_header"),
        ({"scheme": "hmac", "secrets": ["a"], "header": "X", "signed": "{id}"}, "id_header"),
        ({"scheme": "basic", "secrets": ["a"]}, "username"),
        ({"scheme": "api_key", "secrets": ["a"]}, "header"),
        ({"scheme": "api_key", "secrets": ["a"], "header": "X", "query_param": "k"}, "header"),
    ],
)  # fmt: skip
def test_what_a_scheme_lacks_is_named(options: dict[str, Any], where: str) -> None:
    assert where in [w for w, _ in verification.problems(Verification(**options))]


def test_a_timestamp_goes_stale_before_its_message_id_leaves_the_replay_window() -> None:
    from libs.infra.nats.client import DUPLICATE_WINDOW_S

    assert verification.MAX_TOLERANCE_S <= DUPLICATE_WINDOW_S
    cfg = Verification(scheme="stripe", secrets=["a"], tolerance_s=verification.MAX_TOLERANCE_S + 1)
    assert "tolerance_s" in [w for w, _ in verification.problems(cfg)]


def test_every_complete_scheme_has_no_problems() -> None:
    for scheme, (options, _, _) in signers.SCHEMES.items():
        cfg = Verification(**{**options, "secrets": [signers.secret_for(scheme, "x")]})
        assert verification.problems(cfg) == [], scheme


def test_a_redacted_secret_stands_for_the_stored_one_it_shows() -> None:
    stored = ["first-secret-aaaa1111", "second-secret-bbbb2222"]
    shown = verification.shown(Verification(scheme="github", secrets=stored)).secrets
    assert shown == ["…1111", "…2222"]
    assert verification.keep_secrets(shown, stored) == stored
    assert verification.keep_secrets(["…2222", "brand-new"], stored) == [stored[1], "brand-new"]
    assert verification.keep_secrets(["…9999"], stored) is None
    assert verification.keep_secrets(["…"], ["short-1", "short-2"]) is None  # ambiguous


# ---------------------------------------------------------------- handshakes


def _asked(method: str = "GET", query: Any = None, headers: Any = None, body: Any = None) -> Any:
    return handshakes.Asked(method, query or {}, headers or {}, body)


def test_each_handshake_is_answered_as_its_provider_expects() -> None:
    meta = handshakes.Handshake(kind="meta", verify_token="tok")
    q = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    reply = handshakes.answer(meta, _asked(query=q), None)
    assert reply is not None and reply.body == b"1158201444"
    with pytest.raises(Refused) as caught:
        handshakes.answer(meta, _asked(query=q | {"hub.verify_token": "no"}), None)
    assert (caught.value.status, caught.value.code) == (403, "bad_verify_token")

    zoom = handshakes.Handshake(kind="zoom")
    body = {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}
    reply = handshakes.answer(zoom, _asked("POST", body=body), "secret")
    want = hmac.new(b"secret", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert reply is not None and json.loads(reply.body)["encryptedToken"] == want

    twitter = handshakes.Handshake(kind="twitter", secret="consumer")
    reply = handshakes.answer(twitter, _asked(query={"crc_token": "crc"}), None)
    digest = hmac.new(b"consumer", b"crc", hashlib.sha256).digest()
    assert reply is not None
    assert json.loads(reply.body) == {
        "response_token": "sha256=" + base64.b64encode(digest).decode()
    }

    slack = handshakes.answer(
        handshakes.Handshake(kind="slack"),
        _asked("POST", body={"type": "url_verification", "challenge": "c"}),
        None,
    )
    assert slack is not None and json.loads(slack.body) == {"challenge": "c"}
    okta = handshakes.answer(
        handshakes.Handshake(kind="okta"),
        _asked(headers={"x-okta-verification-challenge": "o"}),
        None,
    )
    assert okta is not None and json.loads(okta.body) == {"verification": "o"}
    for kind, query in (("graph", {"validationToken": "v t"}), ("dropbox", {"challenge": "d"})):
        reply = handshakes.answer(handshakes.Handshake(kind=kind), _asked(query=query), None)  # type: ignore[arg-type]
        assert reply is not None and reply.body == next(iter(query.values())).encode()
        assert reply.content_type.startswith("text/plain")


@pytest.mark.parametrize("kind", handshakes.KINDS)
def test_an_ordinary_event_is_not_taken_for_a_handshake(kind: str) -> None:
    cfg = handshakes.Handshake(kind=kind, verify_token="t")  # type: ignore[arg-type]
    for asked in (
        _asked("POST", body={"event": "order.created", "challenge": 1}),
        _asked("GET", query={"value": "day1"}),
        _asked(
            "GET",
            query={
                "challenge": "x" * 5000,
                "crc_token": "x" * 5000,
                "validationToken": "x" * 5000,
                "hub.mode": "subscribe",
                "hub.challenge": "x" * 5000,
            },
        ),
    ):
        assert handshakes.answer(cfg, asked, "s") is None


# ---------------------------------------------------------------- addresses


TRUSTED = addresses.networks(("127.0.0.0/8", "10.0.0.0/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", "10.1.1.1", TRUSTED, "203.0.113.9"),  # the peer is no proxy
        ("127.0.0.1", None, TRUSTED, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.7", TRUSTED, "198.51.100.7"),
        ("127.0.0.1", "198.51.100.7, 10.2.2.2", TRUSTED, "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.2.2.2", TRUSTED, "198.51.100.7"),  # spoofed left
        ("127.0.0.1", "10.3.3.3, 10.2.2.2", TRUSTED, "10.3.3.3"),  # all trusted: the first
        ("127.0.0.1", "198.51.100.7", (), "127.0.0.1"),  # no trusted proxies: ignored
        ("127.0.0.1", "::ffff:198.51.100.7", TRUSTED, "198.51.100.7"),
        ("127.0.0.1", "[2001:db8::1]", TRUSTED, "2001:db8::1"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(
    peer: str, forwarded: str | None, trusted: Any, client: str
) -> None:
    assert addresses.client(peer, forwarded, trusted) == client


def test_an_allow_list_matches_v4_mapped_v6_addresses() -> None:
    allowed = addresses.networks(("192.0.2.0/24",))
    assert addresses.within(addresses.parse("::ffff:192.0.2.5"), allowed)
    assert not addresses.within(addresses.parse("192.0.3.5"), allowed)
    assert not addresses.within(addresses.parse("not an address"), allowed)
