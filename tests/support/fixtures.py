"""pytest fixtures: a real nats-server (JetStream) and a real SecantusDB per test session,
each on a free loopback port with its own temp data dir; unique names per test.

Servers are session-scoped (starting SecantusDB costs about a second); isolation comes
from a unique subject prefix (streams, consumers, KV bucket) and a unique database
per test, so tests never share queues or documents.

Load it with ``pytest_plugins = ["tests.support.fixtures"]`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, overload

import aiohttp
import pytest
from aiohttp import web

from libs.infra.mongo import store as hmongo
from libs.infra.settings import Settings
from libs.local import embedded

T = TypeVar("T")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def nats_server(data_root: Path) -> Iterator[embedded.Proc]:
    proc = embedded.start_nats(data_root / "nats-session")
    yield proc
    embedded.stop(proc)


@pytest.fixture(scope="session")
def mongo_server(data_root: Path) -> Iterator[embedded.Proc]:
    proc = embedded.start_mongo(data_root / "mongo-session")
    yield proc
    embedded.stop(proc)


@pytest.fixture
def settings(nats_server: embedded.Proc, mongo_server: embedded.Proc, tmp_path: Path) -> Settings:
    unique = uuid.uuid4().hex[:10]
    return Settings(
        admin_token="test-token-" + unique,
        nats_url=nats_server.url,
        mongo_uri=mongo_server.url,
        mongo_db=f"t_{unique}",
        prefix=f"t{unique}",
        data_dir=str(tmp_path),
        retry_backoff="0.1,0.1",
        ack_wait_s=3.0,
        allow_private_targets=False,
        stream_max_bytes=8 * 1024**2,  # each test's streams reserve this on the one server
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[hmongo.Store]:
    """The test's database, indexes made, as the services' store sees it."""
    s = hmongo.Store(hmongo.client(settings), settings.mongo_db)
    await s.ensure_indexes()
    yield s
    await s.mongo.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    """A real HTTP server on loopback recording every call (see ``system.Receiver``)."""
    from tests.support.system import Receiver

    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def api(request: pytest.FixtureRequest, session: aiohttp.ClientSession) -> Any:
    """A config API client for the module's ``system`` fixture."""
    from tests.support.system import Api

    system = request.getfixturevalue("system")
    return Api(session, system.apps["config"].url, system.settings.admin_token)


def free_port() -> int:
    return embedded.free_port()


class Running:
    """An aiohttp app served on a real loopback port."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url
        self.app = runner.app

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, port: int | None = None) -> Running:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    port = port or free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return Running(runner, f"http://127.0.0.1:{port}")


@pytest.fixture
async def start_app() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Start apps on free ports; every one is stopped at teardown (last first)."""
    started: list[Running] = []

    async def _start(app: web.Application, port: int | None = None) -> Running:
        running = await serve(app, port)
        started.append(running)
        return running

    yield _start
    for running in reversed(started):
        await running.stop()


@overload
async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = ..., what: str = ...
) -> T: ...


@overload
async def wait_for(
    probe: Callable[[], T | None], *, timeout_s: float = ..., what: str = ...
) -> T: ...


async def wait_for(
    probe: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    *,
    timeout_s: float = 20.0,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
