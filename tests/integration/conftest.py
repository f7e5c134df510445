"""What most integration tests run against: the four services in-process, allowed to
call loopback receivers (modules that need other settings define their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from libs.infra.settings import Settings
from tests.support.system import InProcessSystem


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    settings = msgspec.structs.replace(settings, allow_private_targets=True)
    running = await InProcessSystem(settings).start()
    yield running
    await running.stop()
