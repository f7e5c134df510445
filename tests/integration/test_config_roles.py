"""The config service's roles: the API runs without the projector, and the projector runs as
its own app (own port, metrics and health) that builds the log of what the API-only system
accepted meanwhile."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest
from nats.js.errors import NotFoundError

from libs.infra.nats import client as natsio
from libs.infra.settings import Settings
from services.config.app import create_app
from services.config.projector_main import projector_app
from tests.support.fixtures import serve, wait_for
from tests.support.system import InProcessSystem, one_refused_event

pytestmark = pytest.mark.integration


async def test_the_api_runs_without_the_projector_and_the_projector_alone_catches_up(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    system = InProcessSystem(msgspec.structs.replace(settings, config_roles="api"))
    await system.start()
    nc = await natsio.connect(settings, "roles-test")
    try:
        api, connector = await one_refused_event(system, session, settings.admin_token, "roles")
        js = nc.jetstream()

        async def verdict_published() -> bool:
            return (await js.stream_info(settings.stream_logs)).state.messages >= 1

        await wait_for(verdict_published, what="the executor's verdict on the logs stream")
        # The API-only process opened no projector consumer, so nothing is logged yet.
        for durable in ("projector-received", "projector-logs"):
            with pytest.raises(NotFoundError):
                await js.consumer_info(settings.stream_events, durable)
        events_path = f"/api/v1/connectors/{connector['id']}/events"
        assert (await api.call("GET", events_path))["items"] == []

        system.apps["projector"] = projector = await serve(projector_app(settings))

        async def logged() -> dict[str, Any] | None:
            items = (await api.call("GET", events_path))["items"]
            return items[0] if items and items[0]["status"] == "failed" else None

        await wait_for(logged, what="the projector to log the event the API-only system took")

        # The stats are written just after the entries (the same batch, a second write).
        async def counted() -> bool:
            stats = await api.call("GET", f"/api/v1/connectors/{connector['id']}/stats")
            return bool((stats["received"], stats["failed"]) == (1, 1))

        await wait_for(counted, what="the stats to count the event")

        async def text(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
            async with session.get(url, headers=headers) as response:
                return response.status, await response.text()

        assert (await text(projector.url + "/readyz"))[0] == 200
        status, metrics = await text(projector.url + "/metrics")
        assert status == 200 and "hookline_config_projected_messages_total{" in metrics
        _, api_metrics = await text(system.apps["config"].url + "/metrics")
        assert "hookline_config_projected_messages_total{" not in api_metrics
        bearer = {"Authorization": f"Bearer {settings.admin_token}"}
        assert (await text(projector.url + "/api/v1/connectors", bearer))[0] == 404
    finally:
        await nc.close()
        await system.stop()


@pytest.mark.parametrize("roles", ["", "api,worker", "projectr"])
def test_an_unknown_or_empty_role_is_refused_at_start(settings: Settings, roles: str) -> None:
    with pytest.raises(ValueError, match="HOOKLINE_CONFIG_ROLES"):
        create_app(msgspec.structs.replace(settings, config_roles=roles))
