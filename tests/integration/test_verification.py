"""Source verification through the real pipeline (F12): every scheme signed as its
provider documents it gets in; tampered, unsigned and stale requests are refused with
a JSON reason, logged as ``rejected`` with their raw bytes, counted and in metrics."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import pytest
import standardwebhooks

from libs.infra.settings import Settings
from tests.support import signers
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem, running

pytestmark = pytest.mark.integration

C = "/api/v1/connectors"


async def _post(session: aiohttp.ClientSession, url: str, sent: signers.Sent) -> tuple[int, Any]:
    target = f"{url}?{sent.query}" if sent.query else url
    headers = {"Content-Type": sent.content_type, **sent.headers}
    async with session.post(target, data=sent.body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def _log(api: Api, connector_id: str, count: int, status: str | None = None) -> list[Any]:
    query = f"?status={status}&limit=100" if status else "?limit=100"

    async def entries() -> list[Any] | None:
        found = (await api.call("GET", f"{C}/{connector_id}/events{query}"))["items"]
        return found if len(found) >= count else None

    items: list[Any] = await wait_for(entries, what=f"{count} {status or ''} log entries")
    return items


async def _metrics(session: aiohttp.ClientSession, system: InProcessSystem) -> str:
    async with session.get(system.apps["ingest"].url + "/metrics") as r:
        return await r.text()


async def test_every_scheme_lets_its_sender_in_and_refuses_the_rest(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    body = json.dumps({"From": "+14155550100", "Body": "héllo", "id": "evt_1"}).encode()
    expected: dict[str, tuple[str, dict[str, str]]] = {}  # connector id → (scheme, codes)
    failures: list[str] = []
    for scheme, (options, sign, stamped) in signers.SCHEMES.items():
        secret = signers.secret_for(scheme, scheme)
        connector = await api.create_connector(
            f"verify-{scheme}", {"verification": {**options, "secrets": [secret]}}
        )
        await system.knows(connector)
        url, public = system.ingest_url(connector), connector["url"]
        now = int(time.time())
        cases = {
            "valid": sign(secret, body, now, public),
            "unsigned": signers.Sent({}, body),
            "tampered": signers.tampered(sign(secret, body, now, public)),
            "wrong_secret": sign(signers.secret_for(scheme, "other"), body, now, public),
        }
        if stamped:
            cases["stale"] = sign(secret, body, now - 3600, public)
        codes: dict[str, str] = {}
        for case, sent in cases.items():
            status, answer = await _post(session, url, sent)
            want = 200 if case == "valid" else 401
            if status != want:
                failures.append(f"{scheme}/{case}: {status} {answer}")
            elif case != "valid":
                codes[case] = answer["error"]["code"]
                if case == "stale" and codes[case] != "stale_timestamp":
                    failures.append(f"{scheme}/stale: {answer}")
                if case == "unsigned" and not codes[case].startswith("missing_"):
                    failures.append(f"{scheme}/unsigned: {answer}")
        expected[connector["id"]] = (scheme, codes)
    assert not failures, "\n".join(failures)

    for connector_id, (scheme, codes) in expected.items():
        rejected = await _log(api, connector_id, len(codes), "rejected")
        assert sorted(e["reason"] for e in rejected) == sorted(codes.values()), scheme
        for entry in rejected:
            detail = await api.call("GET", f"{C}/{connector_id}/events/{entry['event_id']}")
            assert detail["status"] == "rejected" and detail["http_status"] in (401, 403)
            assert detail["error"] and detail["raw_body"] is not None, (scheme, detail)
            assert detail["request"]["method"] == "POST"
        accepted = await _log(api, connector_id, 1, "succeeded")
        assert len(accepted) == 1, scheme

        async def counted(
            connector_id: str = connector_id, refused: int = len(codes)
        ) -> dict[str, Any] | None:
            stats = await api.call("GET", f"{C}/{connector_id}/stats")
            return stats if stats["rejected"] == refused and stats["received"] == 1 else None

        await wait_for(counted, what=f"{scheme}: stats to count the refusals once")

    text = await _metrics(session, system)
    assert 'hookline_ingest_rejected_total{connector="' in text
    for reason in ("bad_signature", "stale_timestamp", "missing_signature", "bad_credentials"):
        assert f'reason="{reason}"}}' in text, reason


async def test_the_raw_bytes_of_a_refusal_are_logged_exactly(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """GitHub's documented example (secret "It's a Secret to Everybody", body "Hello,
    World!") gets in; the same signature on other bytes is refused, its bytes kept."""
    api = Api(session, system.apps["config"].url, settings.admin_token)
    config = {"verification": {"scheme": "github", "secrets": ["It's a Secret to Everybody"]}}
    connector, url = await system.ready_connector(api, "github-doc", config)
    doc_signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"X-Hub-Signature-256": doc_signature, "Content-Type": "text/plain"}
    async with session.post(url, data=b"Hello, World!", headers=headers) as r:
        assert r.status == 200, await r.text()
    forged = b"Hello, World!\xff\x00 not the sender's"
    async with session.post(url, data=forged, headers=headers) as r:
        assert r.status == 401
        error = (await r.json())["error"]
        assert error["code"] == "bad_signature" and "X-Hub-Signature-256" in error["message"]
    [entry] = await _log(api, connector["id"], 1, "rejected")
    detail = await api.call("GET", f"{C}/{connector['id']}/events/{entry['event_id']}")
    assert detail["raw_body"]["encoding"] == "base64"
    assert base64.b64decode(detail["raw_body"]["data"]) == forged
    assert detail["request"]["headers"]["x-hub-signature-256"] == doc_signature
    # A refused request is not an event: it cannot be let in by a replay.
    replayed = await api.call("POST", f"{C}/{connector['id']}/events/{entry['event_id']}/replay")
    assert replayed["error"]["code"] == "not_an_event"


async def test_two_secrets_rotate_without_loss_and_a_replayed_id_is_a_duplicate(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    old, new = (signers.secret_for("standard", s) for s in ("old", "new"))
    config = {"verification": {"scheme": "standard", "secrets": [old]}}
    connector, url = await system.ready_connector(api, "rotate", config)
    public = connector["url"]
    body = b'{"type": "invoice.paid", "amount": 12345678901234567890}'
    assert (await _post(session, url, signers.standard(old, body, int(time.time()), public)))[
        0
    ] == 200

    # Rotation: both active while the sender moves over; then the old one retires.
    current = await api.call("GET", f"{C}/{connector['id']}")
    both = {"verification": {"scheme": "standard", "secrets": [old, new]}}
    saved = await api.call(
        "PUT", f"{C}/{connector['id']}", {"version": current["version"], "config": both}, 200
    )
    await system.knows(saved)
    for secret in (old, new):
        other = json.dumps({"signed_with": secret[-4:]}).encode()
        sent = signers.standard(secret, other, int(time.time()), public)
        assert (await _post(session, url, sent))[0] == 200
    only_new = {"verification": {"scheme": "standard", "secrets": [new]}}
    saved = await api.call(
        "PUT", f"{C}/{connector['id']}", {"version": saved["version"], "config": only_new}, 200
    )
    await system.knows(saved)
    status, answer = await _post(
        session, url, signers.standard(old, b'{"late": true}', int(time.time()), public)
    )
    assert (status, answer["error"]["code"]) == (401, "bad_signature")

    # The same signed message sent again (a retry, or a replay by someone who saw it):
    # answered 2xx, stored once.
    now = int(time.time())
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    sig = standardwebhooks.Webhook(new).sign(msg_id, datetime.fromtimestamp(now, tz=UTC), "{}")
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": sig}
    answers = []
    for _ in range(2):
        async with session.post(url, data=b"{}", headers=headers) as r:
            answers.append((r.status, (await r.json())["status"]))
    assert answers == [(200, "stored"), (200, "duplicate")]

    async def counted() -> dict[str, Any] | None:
        stats = await api.call("GET", f"{C}/{connector['id']}/stats")
        done = stats["received"] == 4 and stats["duplicates"] == 1 and stats["rejected"] == 1
        return stats if done else None

    await wait_for(counted, what="4 events, 1 duplicate, 1 refusal")


async def test_secrets_are_write_only_and_a_save_of_what_was_shown_keeps_them(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    secret, token = "shpss_0123456789abcdefWXYZ", "meta-verify-token-4242"
    config = {
        "verification": {"scheme": "shopify", "secrets": [secret]},
        "handshake": {"kind": "meta", "verify_token": token},
    }
    connector, url = await system.ready_connector(api, "write-only", config)
    shown = await api.call("GET", f"{C}/{connector['id']}")
    assert shown["config"]["verification"]["secrets"] == ["…WXYZ"]
    assert shown["config"]["handshake"]["verify_token"] == "…4242"
    versions = await api.call("GET", f"{C}/{connector['id']}/versions")
    dumped = json.dumps(versions) + json.dumps(shown)
    assert secret not in dumped and token not in dumped

    # What GET showed, saved back with another change: the secrets stay.
    shown["config"]["rate_limit_per_s"] = 100
    saved = await api.call(
        "PUT",
        f"{C}/{connector['id']}",
        {"version": shown["version"], "config": shown["config"]},
        200,
    )
    await system.knows(saved)
    sent = signers.shopify(secret, b'{"id": 1}', 0, "")
    assert (await _post(session, url, sent))[0] == 200
    async with session.get(
        url,
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"},
    ) as r:
        assert (r.status, await r.text()) == (200, "1158201444")

    # A redacted value that stands for no stored secret is refused, not stored.
    bad = dict(saved["config"], verification={"scheme": "shopify", "secrets": ["…ABCD"]})
    refused = await api.call(
        "PUT", f"{C}/{connector['id']}", {"version": saved["version"], "config": bad}, 422
    )
    assert refused["error"]["problems"][0]["path"] == "$.config.verification.secrets[0]"


@pytest.mark.parametrize(
    ("verification", "path"),
    [
        ({"scheme": "gitlab", "secrets": ["x"]}, "$.config.verification.scheme"),
        ({"scheme": "github"}, "$.verification.secrets"),
        ({"scheme": "github", "secrets": ["a", "b", "c"]}, "$.verification.secrets"),
        ({"scheme": "hmac", "secrets": ["a"]}, "$.verification.header"),
        ({"scheme": "hmac", "secrets": ["a"], "header": "X-S", "signed": "{nonce}{body}"},
         "$.verification.signed"),
        ({"scheme": "basic", "secrets": ["a"]}, "$.verification.username"),
        ({"scheme": "api_key", "secrets": ["a"]}, "$.verification.header"),
        ({"scheme": "standard", "secrets": ["not base64!"]}, "$.verification.secrets[0]"),
        ({"scheme": "stripe", "secrets": ["a"], "tolerance_s": 0}, "$.verification.tolerance_s"),
    ],
)  # fmt: skip
async def test_an_incomplete_verification_is_a_422_naming_what_is_missing(
    system: InProcessSystem,
    settings: Settings,
    session: aiohttp.ClientSession,
    verification: dict[str, Any],
    path: str,
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    created = await api.call("POST", C, {"name": "bad", "config": {"verification": verification}})
    paths = [p["path"] for p in created["error"].get("problems", [])]
    assert path in paths or path in created["error"]["message"], created


async def test_other_settings_are_checked_at_save(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    config = {"allowed_ips": ["10.0.0.0/8", "not-a-network"], "handshake": {"kind": "meta"}}
    created = await api.call("POST", C, {"name": "bad", "config": config})
    paths = {p["path"] for p in created["error"]["problems"]}
    assert paths == {"$.allowed_ips[1]", "$.handshake.verify_token"}
    created = await api.call("POST", C, {"name": "bad", "config": {"handshake": {"kind": "zoom"}}})
    assert [p["path"] for p in created["error"]["problems"]] == ["$.handshake.secret"]


async def test_allowed_ips_refuse_other_addresses_and_believe_only_trusted_proxies(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    config = {"allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}
    async with running(settings, ("config", "ingest")) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector, url = await system.ready_connector(api, "ips", config)
        # Loopback is not allowed, and with no trusted proxy the header is not believed.
        for headers in ({}, {"X-Forwarded-For": "10.1.2.3"}):
            async with session.post(url, json={"n": 1}, headers=headers) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "address_not_allowed"
        [entry, _] = await _log(api, connector["id"], 2, "rejected")
        detail = await api.call("GET", f"{C}/{connector['id']}/events/{entry['event_id']}")
        assert detail["request"]["source_ip"] == "127.0.0.1"

    behind_proxy = msgspec.structs.replace(settings, trusted_proxies="127.0.0.0/8, 192.168.0.0/16")
    async with running(behind_proxy, ("config", "ingest")) as system:
        api = Api(session, system.apps["config"].url, settings.admin_token)
        connector, url = await system.ready_connector(api, "ips-proxy", config)
        cases = {
            "10.1.2.3": 200,  # the client, as the trusted proxy says
            "10.1.2.3, 192.168.4.4": 200,  # through two trusted proxies
            "10.9.9.9, 8.8.8.8": 403,  # the last untrusted hop counts, not the first
            "2001:db8::7": 200,
            "garbage": 403,
        }
        for forwarded, want in cases.items():
            async with session.post(url, json={}, headers={"X-Forwarded-For": forwarded}) as r:
                assert r.status == want, (forwarded, await r.text())


async def test_handshakes_are_answered_logged_and_run_no_steps(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    slack_secret = "8f742231b10e8888abcd99yyyzzz85a5"
    slack_config = {
        "verification": {"scheme": "slack", "secrets": [slack_secret]},
        "handshake": {"kind": "slack"},
    }
    slack, slack_url = await system.ready_connector(api, "slack", slack_config)
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge,
                       "type": "url_verification"}).encode()  # fmt: skip
    sent = signers.slack(slack_secret, body, int(time.time()), slack["url"])
    status, answer = await _post(session, slack_url, sent)
    assert (status, answer) == (200, {"challenge": challenge})
    # Slack signs its handshake: an unsigned one is refused like any request.
    status, answer = await _post(session, slack_url, signers.Sent({}, body))
    assert status == 401

    zoom_secret = "zoom-secret-token-1"
    zoom_config = {
        "verification": {"scheme": "zoom", "secrets": [zoom_secret]},
        "handshake": {"kind": "zoom"},
        "steps": [{"id": "must-not-run", "type": "filter", "when": {"conditions": [
            {"attribute": "body.event", "op": "exists"}]}}],
    }  # fmt: skip
    zoom, zoom_url = await system.ready_connector(api, "zoom", zoom_config)
    body = (  # Zoom's documented example
        b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,'
        b'"event":"endpoint.url_validation"}'
    )
    status, answer = await _post(
        session, zoom_url, signers.zoom(zoom_secret, body, int(time.time()), "")
    )
    want = hmac.new(zoom_secret.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert (status, answer) == (
        200,
        {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": want},
    )

    unsigned_kinds: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
        # kind: (handshake config, request (GET params or headers), expected body)
        "meta": ({"verify_token": "tok"}, {"params": {"hub.mode": "subscribe",
                 "hub.verify_token": "tok", "hub.challenge": "1158201444"}}, "1158201444"),
        "dropbox": ({}, {"params": {"challenge": "abc123"}}, "abc123"),
        "okta": ({}, {"headers": {"x-okta-verification-challenge": "chal"}},
                 '{"verification":"chal"}'),
        "twitter": ({"secret": "consumer-secret"}, {"params": {"crc_token": "crc"}},
                    json.dumps({"response_token": "sha256=" + base64.b64encode(hmac.new(
                        b"consumer-secret", b"crc", hashlib.sha256).digest()).decode()},
                        separators=(",", ":"))),
    }  # fmt: skip
    for kind, (options, request, want_body) in unsigned_kinds.items():
        connector, url = await system.ready_connector(
            api, kind, {"handshake": {"kind": kind, **options}}
        )
        async with session.get(url, **request) as r:
            assert (r.status, await r.text()) == (200, want_body), kind
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        [entry] = await _log(api, connector["id"], 1, "handshake")
        assert entry["reason"] == kind

    _, graph_url = await system.ready_connector(api, "graph", {"handshake": {"kind": "graph"}})
    async with session.post(
        graph_url, params={"validationToken": "Validation: Testing client app"}
    ) as r:
        assert (r.status, await r.text()) == (200, "Validation: Testing client app")
        assert r.headers["Content-Type"].startswith("text/plain")

    # Meta with the wrong verify token: refused (403) and logged.
    meta = await api.call("GET", C)
    meta_id = next(c["id"] for c in meta["items"] if c["name"] == "meta")
    meta_url = system.ingest_url(next(c for c in meta["items"] if c["name"] == "meta"))
    params = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    async with session.get(meta_url, params=params) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "bad_verify_token"
    await _log(api, meta_id, 1, "rejected")

    async def counted() -> dict[str, Any] | None:
        stats = await api.call("GET", f"{C}/{zoom['id']}/stats")
        return stats if stats["handshakes"] == 1 else None

    stats = await wait_for(counted, what="the zoom handshake counted")
    assert stats["received"] == 0  # a handshake is not an event: no steps ran
    assert (await api.call("GET", f"{C}/{zoom['id']}/events?status=succeeded"))["items"] == []


async def test_an_api_key_in_the_query_is_neither_a_variable_nor_logged(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    key = "hk_live_5f1c0ffee5f1c0ffee"
    config = {"verification": {"scheme": "api_key", "query_param": "key", "secrets": [key]}}
    connector, url = await system.ready_connector(api, "api-key", config)
    async with session.post(url, params={"key": key, "value": "day1"}, json={"a": 1}) as r:
        assert r.status == 200
    [entry] = await _log(api, connector["id"], 1, "succeeded")
    detail = await api.call("GET", f"{C}/{connector['id']}/events/{entry['event_id']}")
    assert detail["event"]["custom_variables"] == {"value": "day1"}
    assert key not in json.dumps(detail)

    header_config = {
        "verification": {"scheme": "api_key", "header": "X-Hookline-Key", "secrets": [key]}
    }
    connector, url = await system.ready_connector(api, "api-key-header", header_config)
    async with session.post(url, headers={"X-Hookline-Key": key}, json={"a": 1}) as r:
        assert r.status == 200
    [entry] = await _log(api, connector["id"], 1, "succeeded")
    detail = await api.call("GET", f"{C}/{connector['id']}/events/{entry['event_id']}")
    assert detail["request"]["headers"]["x-hookline-key"] == "[redacted]"
