"""``python -m services.config.projector_main``: the projector as its own process.

It runs only the projector role of the config service (the event log and the stats, from
the streams) with its own /metrics, /healthz and /readyz on ``HOOKLINE_PROJECTOR_PORT``,
so the API can be scaled, restarted or taken down without it, and the other way round.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from libs.infra.settings import Settings
from libs.runtime.service import main
from services.config.app import create_app


def projector_app(settings: Settings) -> web.Application:
    return create_app(msgspec.structs.replace(settings, config_roles="projector"))


if __name__ == "__main__":
    main("projector", projector_app, "projector_port")
