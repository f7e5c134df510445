"""The four services in one test process (each app on its own loopback port), and a
real HTTP receiver for outgoing calls.  For tests of the pipeline's behaviour; tests
of processes (kill, SIGTERM, ``make run``) use separate processes instead."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from libs.infra.settings import Settings
from tests.support.fixtures import Running, serve


@dataclass
class Receiver:
    """Records every request it gets; answers 200 unless told otherwise."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    running: Running | None = None

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.calls.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "body": body,
                "headers": dict(request.headers),
            }
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status < 400}, status=status)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.running = await serve(app)
        return self

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()


def forward_n(url: str, step_id: str = "call") -> dict[str, Any]:
    """A configuration with one HTTP step that posts the event's ``body.n`` to ``url``:
    the receiver's calls then say which events ran, and how often."""
    return {"steps": [{"type": "http", "id": step_id, "url": url, "body": "{{ body.n }}"}]}


async def ingest_knows(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether an ingest knows this connector URL, without storing an event: a known
    connector refuses a JSON body that is not JSON with 400, an unknown URL answers 404."""
    async with session.post(url, data=b"?", headers={"Content-Type": "application/json"}) as r:
        return r.status == 400


class Api:
    """A small client of the config API for tests."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, json: Any = None, expect: int | None = None
    ) -> Any:
        async with self.session.request(
            method, self.base + path, json=json, headers=self.headers
        ) as response:
            data = await response.json() if response.status != 204 else None
            if expect is not None:
                assert response.status == expect, (response.status, data)
            return data

    async def found(self, path: str) -> Any:
        """The resource, or None while it answers 404 (for waiting on it)."""
        async with self.session.get(self.base + path, headers=self.headers) as response:
            if response.status == 404:
                return None
            assert response.status == 200, (response.status, await response.text())
            return await response.json()

    async def create_connector(self, name: str = "test", config: Any = None) -> dict[str, Any]:
        created: dict[str, Any] = await self.call(
            "POST", "/api/v1/connectors", {"name": name}, expect=201
        )
        if config is not None:
            created = await self.call(
                "PUT",
                f"/api/v1/connectors/{created['id']}",
                {"version": created["version"], "config": config},
                expect=200,
            )
        return created


class InProcessSystem:
    """config + ingest + mapper + executor apps sharing one NATS and one Mongo."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.apps: dict[str, Running] = {}

    async def start(
        self,
        only: tuple[str, ...] = ("config", "ingest", "mapper", "executor"),
    ) -> InProcessSystem:
        from services.config.app import create_app as config_app
        from services.executor.app import create_app as executor_app
        from services.ingest.app import create_app as ingest_app
        from services.mapper.app import create_app as mapper_app

        factories: dict[str, Callable[[Settings], web.Application]] = {
            "config": config_app,
            "ingest": ingest_app,
            "mapper": mapper_app,
            "executor": executor_app,
        }
        for name in only:  # config first: it provisions indexes and the KV snapshots
            self.apps[name] = await serve(factories[name](self.settings))
        return self

    async def stop_one(self, name: str) -> None:
        await self.apps.pop(name).stop()

    async def restart(self, name: str) -> None:
        """Stop one service (gracefully) and start it again on a new port."""
        await self.stop_one(name)
        await self.start((name,))

    async def stop(self) -> None:
        # All at once: each service's consumers may be in a long poll for up to their
        # fetch wait, and nothing a test checks depends on the order they stop in.
        await asyncio.gather(*(app.stop() for app in self.apps.values()))
        self.apps.clear()

    async def knows(self, connector: dict[str, Any], version: int | None = None) -> None:
        """Wait until every running service's registry has this connector (version).

        The KV watch is asynchronous; tests wait for it instead of sleeping."""
        from tests.support.fixtures import wait_for

        token = connector["url"].rsplit("/c/", 1)[1]
        version = version or connector["version"]

        def ready() -> bool:
            from libs.infra.nats.registry import Registry

            for running in self.apps.values():
                for value in running.app.values():
                    registry = (
                        value if isinstance(value, Registry) else getattr(value, "registry", None)
                    )
                    if not isinstance(registry, Registry):
                        continue
                    snap = registry.by_id(connector["id"])
                    if snap is None or snap.version < version or snap.token != token:
                        return False
            return True

        await wait_for(ready, what=f"registries to learn connector v{version}")

    async def ready_connector(
        self, api: Api, name: str, config: Any = None
    ) -> tuple[dict[str, Any], str]:
        """A new connector that every running service knows, and its URL on this ingest."""
        connector = await api.create_connector(name, config)
        await self.knows(connector)
        return connector, self.ingest_url(connector)

    def ingest_url(self, connector: dict[str, Any]) -> str:
        """The connector's URL on this test's ingest port (the public URL is a default)."""
        token = connector["url"].rsplit("/c/", 1)[1]
        return f"{self.apps['ingest'].url}/c/{token}"


@contextlib.asynccontextmanager
async def running(
    settings: Settings, only: tuple[str, ...] = ("config", "ingest", "mapper", "executor")
) -> AsyncIterator[InProcessSystem]:
    """A system of this test's own (``only`` these services), stopped however the test ends."""
    system = await InProcessSystem(settings).start(only)
    try:
        yield system
    finally:
        await system.stop()


async def one_refused_event(
    system: InProcessSystem, session: aiohttp.ClientSession, token: str, name: str
) -> tuple[Api, dict[str, Any]]:
    """An admin client of the system's config API and a new connector that got one event.

    The connector's one step calls a loopback address, which is refused (private targets
    are not allowed): a quick failed verdict, without a receiver."""
    config_url = system.apps["config"].url
    api = Api(session, config_url, token)
    connector, url = await system.ready_connector(api, name, forward_n(config_url + "/x"))
    async with session.post(url, json={"n": 1}) as response:
        assert response.status == 200
    return api, connector
