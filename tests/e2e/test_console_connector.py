"""The connector page of the console in a real headless Chromium: the connecting URL
(copy, rotate with a confirmation, an example with custom variables), Map Response
(saved, previewed, then answered to a webhook), field mapping through the attribute
picker, the JSON structure (design tree, map from a logged event and its warnings),
the steps' save, verification (a secret shown redacted, a signed request accepted) and
a 422's problems shown at their fields."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import msgspec
import pytest

from libs.infra.settings import Settings
from tests.support import signers
from tests.support.browser import Page, log_in
from tests.support.system import Api, InProcessSystem

pytestmark = pytest.mark.e2e


async def open_connector(page: Page, connector_id: str) -> None:
    await page.goto(f"/console/#/connectors/{connector_id}")
    await page.find("#connector-url")


async def value(page: Page, css: str) -> str:
    found: str = await page.js("return document.querySelector(arguments[0]).value", css)
    return found


async def wait_value(page: Page, css: str, wanted: str) -> None:
    script = "return document.querySelector(arguments[0]).value"
    await page.wait(
        lambda: page.driver.execute_script(script, css) == wanted, f"{css} to hold {wanted!r}"
    )


async def toast(page: Page, text: str) -> None:
    await page.wait_text("#toasts .toast", text)


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> int:
    async with session.post(url, json=body) as r:
        return r.status


def js_errors(errors: list[str]) -> list[str]:
    """The page's own errors: a 404/409/422 answer is logged by the browser too."""
    return [e for e in errors if "Failed to load resource" not in e]


async def test_the_url_copies_rotates_behind_a_confirmation_and_builds_an_example(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
) -> None:
    connector, _ = await system.ready_connector(api, "shop orders")
    await log_in(page, settings.admin_token)
    await open_connector(page, connector["id"])
    url = await value(page, "#connector-url")
    assert url == connector["url"]

    await page.click("#copy-url")
    await page.wait(
        lambda: any(
            t.text.startswith(("Copied", "Selected"))
            for t in page.driver.find_elements("css selector", ".toast")
        ),
        "a toast saying the URL was copied (or selected for Ctrl+C)",
    )

    # The example URL builder: name and value, URL-encoded.
    await page.fill("#example-name", "value")
    await page.fill("#example-value", "day 1&x")
    await wait_value(page, "#example-url", url + "?value=day%201%26x")
    await page.find("#copy-example-url")

    # Generate New URL: a confirmation with a grace period, then the new URL is shown.
    await page.click("#rotate-url")
    await page.fill("dialog[open] #grace-seconds", "0")
    await page.accept_dialog("Generate new URL")
    script = "return document.querySelector('#connector-url').value"
    await page.wait(lambda: page.driver.execute_script(script) != url, "the URL to change")
    new_url = await value(page, "#connector-url")
    assert new_url.rsplit("/c/", 1)[1] != url.rsplit("/c/", 1)[1]
    await wait_value(page, "#example-url", new_url + "?value=day%201%26x")
    await system.knows({"id": connector["id"], "url": new_url, "version": 1})

    ingest = system.apps["ingest"].url + "/c/"
    old_status = await post(session, ingest + url.rsplit("/c/", 1)[1], {"n": 1})
    new_status = await post(session, ingest + new_url.rsplit("/c/", 1)[1], {"n": 1})
    assert (old_status, new_status) == (404, 200)
    assert js_errors(await page.console_errors()) == []


async def test_response_mapping_structure_and_steps(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
) -> None:
    await api.call(
        "POST",
        "/api/v1/channels",
        {"type": "http", "id": "web", "name": "Web hooks", "base_url": "https://example.com"},
        expect=201,
    )
    await api.call("POST", "/api/v1/attributes", {"name": "city", "type": "text"}, expect=201)
    connector, url = await system.ready_connector(api, "leads")
    await log_in(page, settings.admin_token)
    await open_connector(page, connector["id"])

    # Before any event: no structure. One event, and the Design tree shows its fields.
    await page.click("#tab-structure")
    await page.wait_text("#structure-tree", "No structure yet")
    first = {"customer": {"name": "Ann", "email": "ann@example.com", "city": "Oslo"}, "n": 7}
    assert await post(session, url, first) == 200
    await page.wait_text("#structure-tree li", "body.customer.email")
    await page.wait_text("#event-log tbody tr", "succeeded")

    # Map Response: a 422 shown at its field, then saved, previewed and answered.
    await page.click("#tab-response")
    await page.fill("#response-status", "999")
    await page.fill("#response-content-type", "text/plain")
    await page.fill("#response-body", "got {{ body.n }}")
    await page.click("#save-response")
    await page.wait_text('[data-path="$.response.status"] + .problem', "HTTP status code")
    invalid = "return document.querySelector('#response-status').getAttribute('aria-invalid')"
    assert await page.js(invalid) == "true"
    await page.fill("#response-status", "201")
    await page.click("#save-response")
    await toast(page, "Saved version 2")
    assert await page.js(invalid) is None
    await page.click("#preview-response")
    await page.wait_text("#response-preview-body", "got 7")
    saved = await api.call("GET", f"/api/v1/connectors/{connector['id']}", expect=200)
    assert saved["config"]["response"] == {
        "status": 201,
        "content_type": "text/plain",
        "body": "got {{ body.n }}",
    }
    await system.knows(saved)
    async with session.post(url, json={"n": 8}) as r:
        assert (r.status, await r.text()) == (201, "got 8")
        assert r.headers["Content-Type"].startswith("text/plain")

    # Field mapping: the email through the attribute picker, the channel, an attribute.
    await page.click("#tab-mapping")
    assert await page.js("return document.querySelector('fieldset.then').disabled") is True
    await page.click('[data-picker-for="mapping-email"]')
    await page.wait_text("dialog[open] h3", "Event attributes")
    await page.wait_text("dialog[open] h3", "System attributes")
    await page.click('dialog[open] button[data-attribute="body.customer.email"]')
    await wait_value(page, "#mapping-email", "body.customer.email")
    await page.select("#mapping-channel", "web")
    assert await page.js("return document.querySelector('fieldset.then').disabled") is False
    await page.click("#add-mapping-attribute")
    await page.select(".mapping-attribute-name", "city")
    await page.fill(".mapping-attribute-value", "body.customer.city")
    await page.click("#save-mapping")
    await toast(page, "Saved version 3")
    saved = await api.call("GET", f"/api/v1/connectors/{connector['id']}", expect=200)
    mapping = saved["config"]["mapping"]
    assert (mapping["email"], mapping["channel"], mapping["attributes"]) == (
        "body.customer.email",
        "web",
        {"city": "body.customer.city"},
    )
    assert saved["config"]["response"]["status"] == 201  # the other section was kept

    # Steps: the editor's value saved whole (its internals are steps.js's own).
    await page.click("#tab-steps")
    await page.click("#save-steps")
    await toast(page, "Saved version 4")

    # Map from this event: a differently shaped event; the warnings name what it lacks.
    async with session.post(url, json={"order": {"id": 5}}) as r:
        assert r.status == 201  # the Map Response above
    await page.click("#tab-structure")
    options = "#remap-event option"
    await page.wait(
        lambda: len(page.driver.find_elements("css selector", options)) == 3, "3 events listed"
    )
    log = await api.call("GET", f"/api/v1/connectors/{connector['id']}/events?limit=1", expect=200)
    newest = log["items"][0]["event_id"]
    detail = await api.call("GET", f"/api/v1/connectors/{connector['id']}/events/{newest}")
    assert detail["event"]["body"] == {"order": {"id": 5}}
    await page.select("#remap-event", newest)
    await page.click("#remap-from-event")
    await page.accept_dialog("Map from this event")
    await page.wait_text("#structure-warnings", "body.customer.email is not in the new structure")
    await page.wait_text("#structure-tree li", "body.order.id")
    await page.click("#tab-structure-code-tab")
    code = await value(page, "#structure-code")
    assert msgspec.json.decode(code)["body"] == {"order": {"id": 5}}

    # Now the mapping refers to a field the structure lacks: a save says so, by path.
    await page.click("#tab-steps")
    await page.click("#save-steps")
    await page.wait_text("#steps-section .problem li", "$.mapping.email")

    assert js_errors(await page.console_errors()) == []


async def test_verification_secret_is_shown_redacted_and_a_signed_request_is_accepted(
    system: InProcessSystem,
    page: Page,
    api: Api,
    settings: Settings,
    session: aiohttp.ClientSession,
) -> None:
    connector, url = await system.ready_connector(api, "github pushes")
    await log_in(page, settings.admin_token)
    await open_connector(page, connector["id"])
    await page.click("#tab-verification")

    # Only the options a scheme needs are shown.
    shown = "return !document.querySelector(arguments[0]).closest('.field').hidden"
    await page.select("#verification-scheme", "hmac")
    assert await page.js(shown, "#verification-header") is True
    await page.select("#verification-scheme", "github")
    assert await page.js(shown, "#verification-header") is False
    assert await page.js(shown, "#verification-tolerance") is False
    await page.fill("#verification-secret-0", "gh-secret-wxyz")
    await page.click("#save-verification")
    await toast(page, "Saved version 2")

    await page._run(page.driver.refresh)
    await page.click("#tab-verification")
    await wait_value(page, "#verification-secret-0", "…wxyz")
    saved = await api.call("GET", f"/api/v1/connectors/{connector['id']}", expect=200)
    assert saved["config"]["verification"]["scheme"] == "github"
    await system.knows(saved)

    body = b'{"ref": "refs/heads/main"}'
    signed = signers.github("gh-secret-wxyz", body, int(time.time()), url)
    headers = {"Content-Type": "application/json", **signed.headers}
    async with session.post(url, data=body, headers=headers) as r:
        assert r.status == 200, await r.text()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 401

    # A redacted value that stands for no stored secret: 422 at that secret's field.
    await page.fill("#verification-secret-0", "…zzzz")
    await page.click("#save-verification")
    await page.wait_text(
        '[data-path="$.config.verification.secrets[0]"] + .problem', "stands for no stored secret"
    )
    invalid = "return document.querySelector('#verification-secret-0').getAttribute('aria-invalid')"
    assert await page.js(invalid) == "true"
    assert js_errors(await page.console_errors()) == []

    # Saved meanwhile elsewhere (these very settings): the page reloads and says so.
    latest = await api.call("GET", f"/api/v1/connectors/{connector['id']}", expect=200)
    changed = {**latest["config"], "allowed_ips": ["203.0.113.0/24"]}
    await api.call(
        "PUT",
        f"/api/v1/connectors/{connector['id']}",
        {"version": latest["version"], "config": changed},
        expect=200,
    )
    await page.click("#save-verification")
    await toast(page, "saved meanwhile")
    await page.click("#tab-verification")  # kept selected across the reload
    await wait_value(page, "#allowed-ips input.allowed-ip", "203.0.113.0/24")
    await wait_value(page, "#verification-secret-0", "…wxyz")
