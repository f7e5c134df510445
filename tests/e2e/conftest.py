"""Fixtures the end-to-end tests share: the in-process system the console tests run
against, a headless Chromium on it, an admin API client, a real SMTP server and the
WhatsApp Cloud API stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from libs.infra.settings import Settings
from tests.support.browser import Page, chromium
from tests.support.graph_api import WA_TOKEN, GraphApiServer, graph_api_server
from tests.support.smtp import SmtpRecorder, smtp_server
from tests.support.system import Api, InProcessSystem, running


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    async with running(msgspec.structs.replace(settings, allow_private_targets=True)) as system:
        yield system


@pytest.fixture
async def page(system: InProcessSystem) -> AsyncIterator[Page]:
    async with chromium(system.apps["config"].url) as page:
        yield page


@pytest.fixture
def api(system: InProcessSystem, session: aiohttp.ClientSession, settings: Settings) -> Api:
    return Api(session, system.apps["config"].url, settings.admin_token)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpRecorder]:
    async with smtp_server() as server:
        yield server


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiServer]:
    async with graph_api_server(token=WA_TOKEN) as server:
        yield server
