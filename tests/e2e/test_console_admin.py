"""The console's admin pages in a real headless Chromium: a connector's stats (Reset) and
versions (what changed between two, Restore); channels (add, edit with the stored
secret kept, delete; no secret ever in the page), subscriber attributes and agents (add,
a 422 at its field, delete) and contacts (search, one contact's attributes and owner)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from libs.infra.settings import Settings
from services.config.context import CTX
from tests.support.browser import Page, log_in
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.e2e
PASSWORD = "s3cret-Pass-9876"
HEADER_SECRET = "Bearer tok-abcdef-123456"
WA_TOKEN = "EAAG-wa-token-5678"
HOOK_URL = "https://crm.example.com/hook?key=k-7f3a9"


async def open_page(page: Page, hash_: str, ready_css: str) -> None:
    await page.goto(f"/console/{hash_}")
    await page.find(ready_css)


async def stored_channel(system: InProcessSystem, channel_id: str) -> dict[str, Any] | None:
    """The channel as MongoDB holds it (secrets whole), behind the API."""
    store = system.apps["config"].app[CTX].store
    doc: dict[str, Any] | None = await store.find_one("channels", {"_id": channel_id})
    return doc


def js_errors(errors: list[str]) -> list[str]:
    """The page's own errors: a 404/409/422 answer is logged by the browser too."""
    return [e for e in errors if "Failed to load resource" not in e]


async def test_stats_count_two_webhooks_and_reset_starts_again(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
) -> None:
    connector, url = await system.ready_connector(api, "Shop orders")
    for n in (1, 2):
        async with session.post(url, json={"order": n}) as r:
            assert r.status == 200
    await log_in(page, settings.admin_token)
    await open_page(page, f"#/connectors/{connector['id']}/stats", "#stats")
    await page.wait_text("main h1", "Shop orders: stats")
    # The page polls: the two events' verdicts arrive without a reload.
    await page.wait_text("[data-stat=succeeded] strong", "2")
    assert (await page.find("[data-stat=received] strong")).text == "2"
    for key in ("failed", "duplicates", "rejected", "handshakes"):
        assert (await page.find(f"[data-stat={key}] strong")).text == "0", key
    before = await page.js("return document.querySelector('#stats-since time').dateTime")
    assert before == (await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats"))["since"]

    await page.click("#stats-reset")
    await page.accept_dialog("Cancel")  # a Cancel changes nothing
    assert (await page.find("[data-stat=received] strong")).text == "2"
    await page.click("#stats-reset")
    await page.accept_dialog("Reset")
    await page.wait_text("[data-stat=received] strong", "0")
    await page.wait_text("[data-stat=succeeded] strong", "0")
    after = await page.js("return document.querySelector('#stats-since time').dateTime")
    stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
    assert stats["received"] == stats["succeeded"] == 0
    assert after == stats["since"] and after > before

    await page.click("#back-to-connector")
    await page.find("#connector-url")
    assert js_errors(await page.console_errors()) == []


async def test_versions_show_what_changed_and_restore_makes_a_new_version(
    system: InProcessSystem, page: Page, api: Api, settings: Settings
) -> None:
    connector = await api.create_connector("Drip")
    cid = connector["id"]
    v2 = await api.call(
        "PUT",
        f"/api/v1/connectors/{cid}",
        {"version": 1, "config": {"response": {"status": 201}}},
        expect=200,
    )
    await api.call(
        "PUT",
        f"/api/v1/connectors/{cid}",
        {"version": v2["version"], "config": {"response": {"status": 202, "body": "ok"}}},
        expect=200,
    )
    await log_in(page, settings.admin_token)
    await open_page(page, f"#/connectors/{cid}/versions", "#versions")
    rows = await page.find_all("#versions tbody tr")
    assert [r.get_attribute("data-version") for r in rows] == ["3", "2", "1"]

    # By default: the newest two (2 → 3).
    changed = await page.wait_text("#version-diff tbody tr", "$.response.status")
    assert "201" in changed.text and "→ 202" in changed.text and "changed" in changed.text
    body = await page.wait_text("#version-diff tbody tr", "$.response.body")
    assert "null" in body.text and '→ "ok"' in body.text
    await page.select("#compare-from", "1")
    await page.wait_text("#version-diff tbody tr", "200")  # v1's default status
    await page.select("#compare-to", "1")
    await page.wait_text("#version-compare", "the same configuration")

    await page.click("#versions button.restore[data-version='1']")
    await page.accept_dialog("Restore")
    await page.wait_text("#toasts .toast", "restored as version 4")
    await page.wait(
        lambda: (
            page.driver.execute_script(
                "return document.querySelector('#versions tbody tr').dataset.version"
            )
            == "4"
            or None
        ),
        "version 4 on top",
    )
    top = await page.find("#versions tbody tr")
    assert "current" in top.text
    versions = (await api.call("GET", f"/api/v1/connectors/{cid}/versions"))["items"]
    assert [v["version"] for v in versions] == [4, 3, 2, 1]
    latest = await api.call("GET", f"/api/v1/connectors/{cid}")
    assert latest["version"] == 4 and latest["config"] == versions[-1]["config"]
    # v3 → v4 now names the status going back to 200.
    await page.wait_text("#version-diff tbody tr", "$.response.status")
    await page.click("#back-to-connector")
    await page.find("#connector-url")
    assert js_errors(await page.console_errors()) == []


async def test_channels_keep_their_secrets_out_of_the_page(
    system: InProcessSystem, page: Page, api: Api, settings: Settings
) -> None:
    await log_in(page, settings.admin_token)
    await open_page(page, "#/channels", "#channel-form")
    form = "#channel-form"
    await page.select(f"{form} [name=type]", "email")
    await page.fill(f"{form} [name=id]", "mail-main")
    await page.fill(f"{form} [name=name]", "Main mail")
    await page.fill(f"{form} [name=host]", "smtp.example.com")
    await page.fill(f"{form} [name=port]", "70000")
    await page.fill(f"{form} [name=username]", "drip")
    await page.fill(f"{form} [name=password]", PASSWORD)
    await page.fill(f"{form} [name=from_address]", "drip@example.com")
    await page.click(f"{form} button[type=submit]")
    # A 422 is shown at its field.
    await page.wait_text(f"{form} [data-path='$.port'] + .problem", "TCP port")
    assert (
        await page.js(
            f"return document.querySelector(\"{form} [name=port]\").getAttribute('aria-invalid')"
        )
        == "true"
    )
    await page.fill(f"{form} [name=port]", "587")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#channels tbody tr", "mail-main")
    shown = await api.call("GET", "/api/v1/channels/mail-main", expect=200)
    assert shown["password"] == "…9876" and shown["host"] == "smtp.example.com"

    await page._run(page.driver.refresh)
    row = await page.wait_text("#channels tbody tr", "mail-main")
    assert "smtp.example.com:587" in row.text
    assert PASSWORD not in await page._run(lambda: page.driver.page_source)

    await page.click("#channels button[data-edit='mail-main']")
    await page.wait_text(f"{form} h2", "Edit channel mail-main")
    await page.wait_text(f"{form} [data-stored=password]", "stored (…9876)")
    assert await page.js(f"return document.querySelector('{form} [name=password]').value") == ""
    assert (
        await page.js(f"return document.querySelector('{form} [name=password]').type") == "password"
    )
    assert PASSWORD not in await page._run(lambda: page.driver.page_source)
    await page.fill(f"{form} [name=name]", "Drip mail")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#channels tbody tr", "Drip mail")
    shown = await api.call("GET", "/api/v1/channels/mail-main", expect=200)
    assert (shown["name"], shown["password"], shown["username"]) == ("Drip mail", "…9876", "drip")
    doc = await stored_channel(system, "mail-main")
    assert doc is not None and doc["password"] == PASSWORD  # kept whole, not "…9876"

    # Moving the host needs the password again: the API's 422 lands at the password field.
    await page.click("#channels button[data-edit='mail-main']")
    await page.wait_text(f"{form} h2", "Edit channel mail-main")
    await page.fill(f"{form} [name=host]", "smtp.other.example.com")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text(f"{form} [data-path='$.password'] + .problem", "send it again")
    await page.fill(f"{form} [name=password]", PASSWORD)
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#channels tbody tr", "smtp.other.example.com")
    assert PASSWORD not in await page._run(lambda: page.driver.page_source)

    # An HTTP channel's header values are write-only too: left empty, the stored one stays.
    await api.call(
        "POST",
        "/api/v1/channels",
        {
            "type": "http",
            "id": "crm-hook",
            "base_url": HOOK_URL,
            "headers": {"Authorization": HEADER_SECRET},
        },
        expect=201,
    )
    await page._run(page.driver.refresh)
    await page.click("#channels button[data-edit='crm-hook']")
    await page.wait_text(f"{form} h2", "Edit channel crm-hook")
    assert await page.js(f"return document.querySelector('{form} [name=header_name]').value") == (
        "Authorization"
    )
    await page.fill(f"{form} [name=name]", "CRM")
    # The base URL came redacted (its query value is a credential): sent back as shown it
    # would replace the stored one, so the form asks for it whole.
    await page.click(f"{form} button[type=submit]")
    await page.wait_text(f"{form} [data-path='$.base_url'] + .problem", "redacted credentials")
    await page.fill(f"{form} [name=base_url]", HOOK_URL)
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#channels tbody tr", "CRM")
    doc = await stored_channel(system, "crm-hook")
    assert doc is not None and (doc["name"], doc["base_url"]) == ("CRM", HOOK_URL)
    assert doc["headers"] == {"Authorization": HEADER_SECRET}
    assert HEADER_SECRET not in await page._run(lambda: page.driver.page_source)

    # A WhatsApp channel: the type picks its fields.
    await page.select(f"{form} [name=type]", "whatsapp")
    await page.fill(f"{form} [name=id]", "wa-main")
    await page.fill(f"{form} [name=phone_number_id]", "1055500001")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text(f"{form} [data-path='$.access_token'] + .problem", "must not be empty")
    await page.fill(f"{form} [name=access_token]", WA_TOKEN)
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#channels tbody tr", "number 1055500001")
    shown = await api.call("GET", "/api/v1/channels/wa-main", expect=200)
    assert shown["access_token"] == "…" + WA_TOKEN[-4:]
    assert WA_TOKEN not in await page._run(lambda: page.driver.page_source)

    await page.click("#channels button[data-delete='mail-main']")
    await page.accept_dialog("Delete")
    await page.wait_text("#toasts .toast", "mail-main deleted")
    await page.wait(
        lambda: (
            not page.driver.find_elements("css selector", "#channels tr[data-channel='mail-main']")
        ),
        "the row to go",
    )
    assert await api.found("/api/v1/channels/mail-main") is None
    assert js_errors(await page.console_errors()) == []


async def test_attributes_and_agents_are_added_and_deleted_through_their_forms(
    system: InProcessSystem, page: Page, api: Api, settings: Settings
) -> None:
    await log_in(page, settings.admin_token)
    await open_page(page, "#/attributes", "#attributes-form")
    form = "#attributes-form"
    await page.fill(f"{form} [name=name]", "City")
    await page.select(f"{form} [name=type]", "text")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text(f"{form} [data-path='$.name'] + .problem", "lower-case")
    await page.fill(f"{form} [name=name]", "city")
    await page.fill(f"{form} [name=description]", "Where they live")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#attributes tbody tr", "Where they live")
    assert await page.js(f"return document.querySelectorAll('{form} .problem').length") == 0
    found = await api.call("GET", "/api/v1/attributes/city", expect=200)
    assert (found["type"], found["description"]) == ("text", "Where they live")
    await page.fill(f"{form} [name=name]", "city")  # again: 409 at the name
    await page.click(f"{form} button[type=submit]")
    await page.wait_text(f"{form} [data-path='$.name'] + .problem", "exists")
    await page.click("#attributes button[data-delete='city']")
    await page.accept_dialog("Delete")
    await page.wait_text("#attributes-list", "None yet")
    assert await api.found("/api/v1/attributes/city") is None

    await open_page(page, "#/agents", "#agents-form")
    form = "#agents-form"
    await page.fill(f"{form} [name=email]", "not-an-email")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text(f"{form} [data-path='$.email'] + .problem", "email address")
    await page.fill(f"{form} [name=email]", "Ann@Example.com")
    await page.fill(f"{form} [name=name]", "Ann")
    await page.click(f"{form} button[type=submit]")
    await page.wait_text("#agents tbody tr", "ann@example.com")
    found = await api.call("GET", "/api/v1/agents/ann@example.com", expect=200)
    assert found["name"] == "Ann"
    await page.click("#agents button[data-delete='ann@example.com']")
    await page.accept_dialog("Delete")
    await page.wait_text("#agents-list", "None yet")
    assert await api.found("/api/v1/agents/ann@example.com") is None
    assert js_errors(await page.console_errors()) == []


async def test_contacts_are_found_by_email_with_their_attributes_and_owner(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
) -> None:
    await api.call(
        "POST",
        "/api/v1/channels",
        {"type": "http", "id": "crm-hook", "base_url": "https://crm.example.com"},
        expect=201,
    )
    await api.call("POST", "/api/v1/attributes", {"name": "city", "type": "text"}, expect=201)
    await api.call(
        "POST", "/api/v1/agents", {"email": "owner@example.com", "name": "Olga"}, expect=201
    )
    mapping = {
        "email": "body.email",
        "name": "body.name",
        "channel": "crm-hook",
        "attributes": {"city": "body.city"},
        "owner_from": "body.owner",
    }
    _, url = await system.ready_connector(api, "Signups", {"mapping": mapping})
    body = {
        "email": "Ann@Example.com",
        "name": "Ann Lee",
        "city": "Lisbon",
        "owner": "owner@example.com",
    }
    async with session.post(url, json=body) as r:
        assert r.status == 200

    async def contact() -> Any:
        found = await api.call("GET", "/api/v1/contacts?email=ann@example.com")
        return found["items"][0] if found.get("items") else None

    stored = await wait_for(contact, what="the mapper to write the contact")
    await log_in(page, settings.admin_token)
    await open_page(page, "#/contacts", "#contacts-form")
    await page.fill("#contacts-form [name=mobile]", "not a number")
    await page.click("#contacts-form button[type=submit]")
    await page.wait_text("#contacts-form [data-path=mobile] + .problem", "not a valid phone number")
    await page.fill("#contacts-form [name=mobile]", "")
    await page.fill("#contacts-form [name=email]", "ANN@example.com")
    await page.click("#contacts-form button[type=submit]")
    row = await page.wait_text("#contacts tbody tr", "Ann Lee")
    assert "owner@example.com" in row.text
    await page.click(f"#contacts tr[data-contact='{stored['id']}'] button")
    details = await page.wait_text("#contact-details", "Lisbon")
    assert "owner@example.com (Olga)" in details.text
    await page.wait_text("#contact-attributes tr[data-attribute=city]", "Lisbon")
    assert js_errors(await page.console_errors()) == []
