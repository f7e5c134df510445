"""The CRM objects of the config API (attributes, channels, agents) against real
nats-server and SecantusDB, and channels reaching a ChannelRegistry through KV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.js.kv import KeyValue

from libs.domain.channels import Channel, HttpChannel, SmtpChannel, WhatsAppChannel
from libs.infra.nats.channel_registry import ChannelRegistry, bucket_name, ensure_channels_bucket
from libs.infra.settings import Settings
from services.config.context import CTX
from services.config.crm_api import republish_channels
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    running = await InProcessSystem(settings).start(only=("config",))
    yield running
    await running.stop()


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    client = await nats.connect(settings.nats_url)
    yield client
    await client.close()


@pytest.fixture
async def channels_kv(nc: Client, settings: Settings) -> KeyValue:
    return await ensure_channels_bucket(nc.jetstream(), settings)


async def kv_channel(kv: KeyValue, channel_id: str) -> Channel:
    """What the executor would read: the full channel, secrets included."""
    entry = await kv.get(channel_id)
    assert entry.value is not None
    channel: Channel = msgspec.json.decode(entry.value, type=Channel)
    return channel


WHATSAPP = {
    "type": "whatsapp",
    "id": "wa-main",
    "name": "Main number",
    "phone_number_id": "1234567890",
    "access_token": "EAAG-secret-token-9876",
}
EMAIL = {
    "type": "email",
    "name": "Support mailbox",
    "host": "smtp.example.com",
    "port": 587,
    "username": "support",
    "password": "hunter2-pass-5555",
    "from_address": "Support <support@example.com>",
}
HTTP = {
    "type": "http",
    "id": "crm_hook",
    "base_url": "https://crm.example.com/api",
    "headers": {"Authorization": "Bearer http-secret-1111", "X-Team": "sales"},
}


# ====================================================================== auth


@pytest.mark.parametrize("path", ["/api/v1/attributes", "/api/v1/channels", "/api/v1/agents"])
async def test_token_required(
    system: InProcessSystem, session: aiohttp.ClientSession, path: str
) -> None:
    url = system.apps["config"].url + path
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        async with session.get(url, headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"
        async with session.post(url, json={"name": "x"}, headers=headers) as r:
            assert r.status == 401


# ====================================================================== attributes


async def test_attributes_lifecycle(api: Api) -> None:
    created = await api.call(
        "POST",
        "/api/v1/attributes",
        {"name": "city", "type": "text", "description": "Where they live"},
        expect=201,
    )
    assert created["name"] == "city"
    assert created["type"] == "text"
    assert created["description"] == "Where they live"
    assert created["created_at"]
    await api.call("POST", "/api/v1/attributes", {"name": "plan_2", "type": "number"}, expect=201)

    listing = await api.call("GET", "/api/v1/attributes", expect=200)
    assert [(i["name"], i["type"]) for i in listing["items"]] == [
        ("city", "text"),
        ("plan_2", "number"),
    ]
    one = await api.call("GET", "/api/v1/attributes/plan_2", expect=200)
    assert (one["name"], one["type"], one["description"]) == ("plan_2", "number", "")

    dup = await api.call("POST", "/api/v1/attributes", {"name": "city", "type": "date"}, expect=409)
    assert dup["error"]["code"] == "attribute_exists"
    assert (await api.call("GET", "/api/v1/attributes/city"))["type"] == "text"  # unchanged

    await api.call("DELETE", "/api/v1/attributes/city", expect=204)
    missing = await api.call("GET", "/api/v1/attributes/city", expect=404)
    assert missing["error"]["code"] == "not_found"
    await api.call("DELETE", "/api/v1/attributes/city", expect=404)
    listing = await api.call("GET", "/api/v1/attributes", expect=200)
    assert [i["name"] for i in listing["items"]] == ["plan_2"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "City", "type": "text"}, "$.name"),
        ({"name": "1city", "type": "text"}, "$.name"),
        ({"name": "a" * 65, "type": "text"}, "$.name"),
        ({"name": "city\n", "type": "text"}, "$.name"),
        ({"type": "text"}, "$.name"),
        ({"name": "city", "type": "colour"}, "$.type"),
        ({"name": "city"}, "$.type"),
        ({"name": "city", "type": "text", "description": 5}, "$.description"),
        ({"name": "city", "type": "text", "default": "Paris"}, "$.default"),
    ],
)
async def test_attribute_rejects_bad_input(api: Api, body: dict[str, Any], path: str) -> None:
    answer = await api.call("POST", "/api/v1/attributes", body, expect=422)
    assert answer["error"]["code"] == "invalid_attribute"
    assert path in answer["error"]["message"]
    assert path in [p["path"] for p in answer["error"]["problems"]]
    assert (await api.call("GET", "/api/v1/attributes"))["items"] == []


async def test_attribute_body_must_be_json(api: Api, session: aiohttp.ClientSession) -> None:
    async with session.post(
        api.base + "/api/v1/attributes",
        data=b"{nope",
        headers={**api.headers, "Content-Type": "application/json"},
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_json"


# ====================================================================== agents


async def test_agents_lifecycle(api: Api) -> None:
    created = await api.call(
        "POST", "/api/v1/agents", {"email": "  Ann.Lee@Example.COM ", "name": "Ann"}, expect=201
    )
    assert created["email"] == "ann.lee@example.com"
    assert created["name"] == "Ann"
    await api.call("POST", "/api/v1/agents", {"email": "bob@example.com"}, expect=201)

    dup = await api.call("POST", "/api/v1/agents", {"email": "ANN.LEE@example.com"}, expect=409)
    assert dup["error"]["code"] == "agent_exists"

    listing = await api.call("GET", "/api/v1/agents", expect=200)
    assert [(i["email"], i["name"]) for i in listing["items"]] == [
        ("ann.lee@example.com", "Ann"),
        ("bob@example.com", ""),
    ]
    one = await api.call("GET", "/api/v1/agents/Ann.Lee@example.com", expect=200)
    assert one["email"] == "ann.lee@example.com"

    await api.call("DELETE", "/api/v1/agents/ANN.LEE@EXAMPLE.COM", expect=204)
    await api.call("GET", "/api/v1/agents/ann.lee@example.com", expect=404)
    await api.call("DELETE", "/api/v1/agents/ann.lee@example.com", expect=404)
    listing = await api.call("GET", "/api/v1/agents", expect=200)
    assert [i["email"] for i in listing["items"]] == ["bob@example.com"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"email": "not-an-email", "name": "X"}, "$.email"),
        ({"email": "a@b", "name": "X"}, "$.email"),
        ({"email": "two words@example.com"}, "$.email"),
        ({"name": "X"}, "$.email"),
        ({"email": 42}, "$.email"),
        ({"email": "x@example.com", "name": ["X"]}, "$.name"),
        ({"email": "x@example.com", "role": "admin"}, "$.role"),
    ],
)
async def test_agent_rejects_bad_input(api: Api, body: dict[str, Any], path: str) -> None:
    answer = await api.call("POST", "/api/v1/agents", body, expect=422)
    assert answer["error"]["code"] == "invalid_agent"
    assert path in answer["error"]["message"]
    assert (await api.call("GET", "/api/v1/agents"))["items"] == []


# ====================================================================== channels


async def test_channels_create_list_get_redacted(api: Api, channels_kv: KeyValue) -> None:
    wa = await api.call("POST", "/api/v1/channels", WHATSAPP, expect=201)
    assert wa["id"] == "wa-main"
    assert wa["type"] == "whatsapp"
    assert wa["access_token"] == "…9876"

    email = await api.call("POST", "/api/v1/channels", EMAIL, expect=201)
    assert email["id"].startswith("ch_") and len(email["id"]) > 3
    assert email["password"] == "…5555"
    assert email["username"] == "support"

    http = await api.call("POST", "/api/v1/channels", HTTP, expect=201)
    assert http["headers"] == {"Authorization": "…", "X-Team": "…"}

    listing = await api.call("GET", "/api/v1/channels", expect=200)
    by_id = {c["id"]: c for c in listing["items"]}
    assert set(by_id) == {"wa-main", email["id"], "crm_hook"}
    text = msgspec.json.encode(listing).decode()
    for secret in ("EAAG-secret-token-9876", "hunter2-pass-5555", "http-secret-1111"):
        assert secret not in text
    assert by_id["wa-main"]["access_token"] == "…9876"

    one = await api.call("GET", f"/api/v1/channels/{email['id']}", expect=200)
    assert one == email
    await api.call("GET", "/api/v1/channels/nope", expect=404)

    # The KV copy, for the executor, carries the secrets whole.
    stored = await kv_channel(channels_kv, "wa-main")
    assert isinstance(stored, WhatsAppChannel)
    assert stored.access_token == "EAAG-secret-token-9876"
    stored_email = await kv_channel(channels_kv, email["id"])
    assert isinstance(stored_email, SmtpChannel)
    assert stored_email.password == "hunter2-pass-5555"


async def test_channel_duplicate_id(api: Api) -> None:
    await api.call("POST", "/api/v1/channels", WHATSAPP, expect=201)
    other = {**EMAIL, "id": "wa-main"}
    dup = await api.call("POST", "/api/v1/channels", other, expect=409)
    assert dup["error"]["code"] == "channel_exists"
    assert (await api.call("GET", "/api/v1/channels/wa-main"))["type"] == "whatsapp"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({k: v for k, v in WHATSAPP.items() if k != "type"}, "$.type"),
        ({**WHATSAPP, "type": "sms"}, "$.type"),
        ({k: v for k, v in WHATSAPP.items() if k != "access_token"}, "access_token"),
        ({**EMAIL, "port": "587"}, "$.port"),
        ({**EMAIL, "port": 70000}, "$.port"),
        ({**EMAIL, "from_address": "nobody"}, "$.from_address"),
        ({**EMAIL, "password": "…5555"}, "$.password"),
        ({**WHATSAPP, "id": "has space"}, "$.id"),
        ({**WHATSAPP, "id": "x" * 65}, "$.id"),
        ({**WHATSAPP, "phone_number_id": "12/../34"}, "$.phone_number_id"),
        ({**WHATSAPP, "api_base": "ftp://graph.example"}, "$.api_base"),
        ({**WHATSAPP, "colour": "red"}, "colour"),
        ({**HTTP, "base_url": "crm.example.com"}, "$.base_url"),
        ({**HTTP, "headers": {"X-A": "…"}}, "$.headers.X-A"),
    ],
)
async def test_channel_rejects_bad_input(api: Api, body: dict[str, Any], path: str) -> None:
    answer = await api.call("POST", "/api/v1/channels", body, expect=422)
    assert answer["error"]["code"] == "invalid_channel"
    assert path in answer["error"]["message"]
    assert (await api.call("GET", "/api/v1/channels"))["items"] == []


async def test_put_round_trips_redacted_view(api: Api, channels_kv: KeyValue) -> None:
    created = await api.call("POST", "/api/v1/channels", EMAIL, expect=201)
    cid = created["id"]
    view = await api.call("GET", f"/api/v1/channels/{cid}", expect=200)

    # Send back exactly what GET showed, with one change: the secret is kept.
    changed = await api.call(
        "PUT", f"/api/v1/channels/{cid}", {**view, "name": "Renamed"}, expect=200
    )
    assert changed["name"] == "Renamed"
    assert changed["password"] == "…5555"
    stored = await kv_channel(channels_kv, cid)
    assert isinstance(stored, SmtpChannel)
    assert (stored.name, stored.password) == ("Renamed", "hunter2-pass-5555")

    # Secret omitted: kept too (id and type come from the URL and the stored channel).
    body = {k: v for k, v in view.items() if k not in ("password", "id", "type")}
    await api.call("PUT", f"/api/v1/channels/{cid}", {**body, "timeout_s": 9.0}, expect=200)
    # Where the secret goes changes: only with the secret itself, sent again.
    refused = await api.call("PUT", f"/api/v1/channels/{cid}", {**body, "port": 2525}, expect=422)
    assert refused["error"]["code"] == "secret_required"
    assert refused["error"]["problems"][0]["path"] == "$.password"
    again = {**body, "port": 2525, "password": EMAIL["password"]}
    await api.call("PUT", f"/api/v1/channels/{cid}", again, expect=200)
    stored = await kv_channel(channels_kv, cid)
    assert isinstance(stored, SmtpChannel)
    assert (stored.port, stored.password) == (2525, "hunter2-pass-5555")

    # A new secret replaces it; null clears an optional one.
    await api.call(
        "PUT", f"/api/v1/channels/{cid}", {**view, "password": "new-pw-7777"}, expect=200
    )
    stored = await kv_channel(channels_kv, cid)
    assert isinstance(stored, SmtpChannel)
    assert stored.password == "new-pw-7777"
    cleared = await api.call("PUT", f"/api/v1/channels/{cid}", {**view, "password": None})
    assert cleared["password"] is None
    stored = await kv_channel(channels_kv, cid)
    assert isinstance(stored, SmtpChannel)
    assert stored.password is None


async def test_put_keeps_redacted_http_headers(api: Api, channels_kv: KeyValue) -> None:
    await api.call("POST", "/api/v1/channels", HTTP, expect=201)
    view = await api.call("GET", "/api/v1/channels/crm_hook", expect=200)
    headers = {**view["headers"], "X-Team": "support", "X-New": "1"}
    answer = await api.call(
        "PUT", "/api/v1/channels/crm_hook", {**view, "headers": headers}, expect=200
    )
    assert answer["headers"] == {"Authorization": "…", "X-Team": "…", "X-New": "…"}
    stored = await kv_channel(channels_kv, "crm_hook")
    assert isinstance(stored, HttpChannel)
    assert stored.headers == {
        "Authorization": "Bearer http-secret-1111",
        "X-Team": "support",
        "X-New": "1",
    }
    bad = await api.call(
        "PUT", "/api/v1/channels/crm_hook", {**view, "headers": {"X-Unknown": "…"}}, expect=422
    )
    assert "$.headers.X-Unknown" in bad["error"]["message"]


async def test_put_refusals(api: Api) -> None:
    await api.call("POST", "/api/v1/channels", WHATSAPP, expect=201)
    view = await api.call("GET", "/api/v1/channels/wa-main", expect=200)
    missing = await api.call("PUT", "/api/v1/channels/nope", view, expect=404)
    assert missing["error"]["code"] == "not_found"
    other_id = await api.call("PUT", "/api/v1/channels/wa-main", {**view, "id": "x"}, expect=422)
    assert "$.id" in other_id["error"]["message"]
    unknown = await api.call("PUT", "/api/v1/channels/wa-main", {**view, "type": "sms"}, expect=422)
    assert unknown["error"]["code"] == "invalid_channel"
    retype = await api.call(
        "PUT", "/api/v1/channels/wa-main", {**EMAIL, "id": "wa-main"}, expect=422
    )
    assert retype["error"]["code"] == "channel_type_change"
    bad = await api.call(
        "PUT", "/api/v1/channels/wa-main", {**view, "phone_number_id": 5}, expect=422
    )
    assert "$.phone_number_id" in bad["error"]["message"]
    assert await api.call("GET", "/api/v1/channels/wa-main") == view  # nothing changed


async def test_delete_refused_while_a_connector_uses_the_channel(api: Api) -> None:
    await api.call("POST", "/api/v1/channels", EMAIL | {"id": "mail"}, expect=201)
    await api.call("POST", "/api/v1/channels", EMAIL | {"id": "mail-b"}, expect=201)
    email_step = {
        "type": "email",
        "id": "notify",
        "to": "ops@example.com",
        "subject": "New order",
        "text": "Order {{ body.id }}",
        "channel": "mail",
    }
    direct = await api.create_connector("Orders", {"steps": [email_step]})
    nested = await api.create_connector(
        "Drip",
        {
            "steps": [
                {
                    "type": "branch",
                    "id": "b1",
                    "steps": [{**email_step, "id": "inner"}],
                }
            ]
        },
    )
    mapped = await api.create_connector(
        "Mapped", {"mapping": {"email": "body.email", "channel": "mail"}}
    )
    await api.create_connector("Unrelated", {"steps": [{**email_step, "channel": "mail-b"}]})

    refused = await api.call("DELETE", "/api/v1/channels/mail", expect=409)
    assert refused["error"]["code"] == "channel_in_use"
    assert sorted(refused["error"]["connectors"], key=lambda c: c["name"]) == [
        {"id": nested["id"], "name": "Drip"},
        {"id": mapped["id"], "name": "Mapped"},
        {"id": direct["id"], "name": "Orders"},
    ]
    for name in ("Orders", "Drip", "Mapped"):
        assert name in refused["error"]["message"]
    await api.call("GET", "/api/v1/channels/mail", expect=200)  # still there

    for connector in (direct, nested, mapped):
        latest = await api.call("GET", f"/api/v1/connectors/{connector['id']}")
        await api.call(
            "PUT",
            f"/api/v1/connectors/{connector['id']}",
            {"version": latest["version"], "config": {"steps": []}},
            expect=200,
        )
    await api.call("DELETE", "/api/v1/channels/mail", expect=204)
    await api.call("GET", "/api/v1/channels/mail", expect=404)
    await api.call("DELETE", "/api/v1/channels/mail", expect=404)


# ====================================================================== channels in KV


async def test_registry_follows_channels(
    api: Api, channels_kv: KeyValue, nc: Client, settings: Settings
) -> None:
    await api.call("POST", "/api/v1/channels", WHATSAPP, expect=201)
    registry = ChannelRegistry()
    await registry.start(nc.jetstream(), channels_kv, bucket_name(settings))
    try:
        # Loaded at start: what existed before.
        first = registry.get("wa-main")
        assert isinstance(first, WhatsAppChannel)
        assert first.access_token == "EAAG-secret-token-9876"

        created = await api.call("POST", "/api/v1/channels", EMAIL, expect=201)
        cid = created["id"]
        mail = await wait_for(lambda: registry.get(cid), what="registry to learn the channel")
        assert isinstance(mail, SmtpChannel)
        assert mail.password == "hunter2-pass-5555"

        moved = {**created, "port": 465, "password": EMAIL["password"]}
        await api.call("PUT", f"/api/v1/channels/{cid}", moved, expect=200)

        def updated() -> bool:
            channel = registry.get(cid)
            return isinstance(channel, SmtpChannel) and channel.port == 465

        await wait_for(updated, what="registry to learn the update")

        await api.call("DELETE", f"/api/v1/channels/{cid}", expect=204)
        await wait_for(lambda: registry.get(cid) is None, what="registry to drop the channel")
        assert registry.get("wa-main") is not None
        assert len(registry) == 1
    finally:
        await registry.stop()


async def test_republish_channels_makes_kv_equal_to_mongo(
    system: InProcessSystem, api: Api, nc: Client, settings: Settings
) -> None:
    await api.call("POST", "/api/v1/channels", WHATSAPP, expect=201)
    # Created by the first write, under the name the executor is told to watch.
    assert bucket_name(settings) == f"{settings.prefix}_channels"
    channels_kv = await nc.jetstream().key_value(f"{settings.prefix}_channels")
    await channels_kv.delete("wa-main")  # lost from KV
    await channels_kv.put("ghost", b'{"type":"http","id":"ghost"}')  # not in Mongo

    await republish_channels(system.apps["config"].app[CTX])

    assert sorted(await channels_kv.keys()) == ["wa-main"]
    restored = await kv_channel(channels_kv, "wa-main")
    assert isinstance(restored, WhatsAppChannel)
    assert restored.access_token == "EAAG-secret-token-9876"
