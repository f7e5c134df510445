"""The seed's drip campaign built through the console's step forms in a real headless
Chromium: three branches, each a filter on ``custom_variables.value`` and an email on
a real SMTP server; day1/day2/day3 sent to the one URL; each event's execution log
seen in the console, and exactly three messages at the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from libs.infra.settings import Settings
from tests.support.browser import Page, chromium
from tests.support.fixtures import wait_for
from tests.support.smtp import SmtpRecorder, smtp_server
from tests.support.system import Api, InProcessSystem, running

pytestmark = pytest.mark.e2e


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpRecorder]:
    async with smtp_server() as server:
        yield server


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    async with running(msgspec.structs.replace(settings, allow_private_targets=True)) as system:
        yield system


async def _in(page: Page, css: str, text: str) -> None:
    """Type into the last matching field (the card or condition just added)."""
    fields = await page.find_all(css)
    assert fields, css
    el = fields[-1]
    await page._run(el.clear)
    await page._run(el.send_keys, text)


async def _add_step(page: Page, within: str, kind: str) -> None:
    """Add a step of ``kind`` with the last "add a step" row inside ``within``."""
    rows = await page.find_all(f"{within} .add-step")
    row = rows[-1]
    select = row.find_element("css selector", "select")
    choose = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))"
    await page.js(choose, select, kind)
    await page._run(row.find_element("css selector", "button").click)


async def test_the_drip_campaign_built_with_the_forms_sends_one_email_per_day(
    system: InProcessSystem, settings: Settings, session: aiohttp.ClientSession, smtp: SmtpRecorder
) -> None:
    api = Api(session, system.apps["config"].url, settings.admin_token)
    await api.call(
        "POST", "/api/v1/channels",
        {"type": "email", "id": "mail-main", "host": smtp.host, "port": smtp.port,
         "from_address": "drip@hookline.test", "starttls": False, "allow_private": True},
        expect=201,
    )  # fmt: skip
    connector, url = await system.ready_connector(api, "Drip campaign")

    async with chromium(system.apps["config"].url) as page:
        await page.goto("/console/")
        await page.fill("#token", settings.admin_token)
        await page.click("form button[type=submit]")
        await page.find("#new-connector-name")
        await page.goto(f"/console/#/connectors/{connector['id']}")
        await page.click("#tab-steps")
        for n in (1, 2, 3):
            # A branch, then inside it a filter and an email, as the seed's help shows.
            await _add_step(page, ".steps-forms", "branch")
            await _in(page, ".step.branch > .field input[name=id]", f"day{n}")
            branch = f".step.branch[data-path='$.steps[{n - 1}]']"
            await _add_step(page, branch, "filter")
            await _in(page, f"{branch} .step.filter .field input[name=id]", f"only-day{n}")
            if n == 1:  # saved with the condition's attribute empty: the problem at its field
                await page.click("#save-steps")
                attribute = f"{branch} .condition input[name=attribute]"
                await page.wait_text("#steps-section .problem", "")
                await page.wait(
                    lambda a=attribute: (
                        page.driver.find_element("css selector", a).get_attribute("aria-invalid")
                        == "true"
                        or None
                    ),
                    "the empty attribute marked invalid",
                )
            await _in(page, f"{branch} .condition input[name=attribute]", "custom_variables.value")
            await _in(page, f"{branch} .condition input[name=value]", f"day{n}")
            await _add_step(page, branch, "email")
            await _in(page, f"{branch} .step.email input[name=id]", f"mail-day{n}")
            await _in(page, f"{branch} .step.email input[name=to]", "{{ body.email }}")
            await _in(
                page, f"{branch} .step.email input[name=subject]", f"Day {n}, {{{{ body.name }}}}"
            )
            await _in(page, f"{branch} .step.email textarea[name=text]", f"Message {n}")
            await _in(page, f"{branch} .step.email input[name=channel]", "mail-main")
        await page.click("#save-steps")
        await page.wait_text("#toasts .toast", "Saved version 2")

        saved = await api.call("GET", f"/api/v1/connectors/{connector['id']}")
        branches = saved["config"]["steps"]
        assert [b["id"] for b in branches] == ["day1", "day2", "day3"]
        assert branches[1]["steps"][0]["when"]["conditions"] == [
            {"attribute": "custom_variables.value", "op": "equals", "value": "day2",
             "case_sensitive": False}
        ]  # fmt: skip
        await system.knows(saved)

        for n in (1, 2, 3):
            body = {"email": f"ann{n}@example.com", "name": "Ann"}
            async with session.post(f"{url}?value=day{n}", json=body) as r:
                assert r.status == 200

        async def all_done() -> list[Any] | None:
            found = (await api.call("GET", f"/api/v1/connectors/{connector['id']}/events"))["items"]
            return (
                found
                if len(found) == 3 and all(e["status"] == "succeeded" for e in found)
                else None
            )

        events = await wait_for(all_done, what="the three events' verdicts")
        mails = await smtp.wait_for(3)
        subjects = sorted(m.message["Subject"] for m in mails)
        assert subjects == ["Day 1, Ann", "Day 2, Ann", "Day 3, Ann"]
        assert sorted(r for m in mails for r in m.rcpt_tos) == [
            "ann1@example.com",
            "ann2@example.com",
            "ann3@example.com",
        ]

        # Each event's execution log in the console: its day's email sent, the others' filtered.
        for entry in events:
            detail = await api.call(
                "GET", f"/api/v1/connectors/{connector['id']}/events/{entry['event_id']}"
            )
            day = detail["event"]["custom_variables"]["value"]
            await page.goto(f"/console/#/connectors/{connector['id']}/events/{entry['event_id']}")
            await page.find("#execution-log")
            rows = {
                r.get_attribute("data-step"): r.get_attribute("data-status")
                for r in await page.find_all("#execution-log tbody tr")
            }
            for n in (1, 2, 3):
                if f"day{n}" == day:
                    assert (
                        rows[f"only-day{n}"] == "succeeded" and rows[f"mail-day{n}"] == "succeeded"
                    )
                else:
                    assert rows[f"only-day{n}"] == "filtered" and f"mail-day{n}" not in rows
