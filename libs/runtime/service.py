"""Running one service process: logging, the aiohttp app, graceful SIGTERM/SIGINT.

aiohttp's ``run_app`` turns SIGTERM into a graceful shutdown: the listener closes
(intake stops), then every ``cleanup_ctx`` finishes in order, which is where
consumer loops finish their in-flight batch, settle it and drain NATS.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from libs.infra import logging as hlog
from libs.infra import settings as hsettings
from libs.infra.settings import Settings

SHUTDOWN_TIMEOUT_S = 15.0


def main(name: str, factory: Callable[[Settings], web.Application], port_of: str) -> None:
    settings = hsettings.load()
    log = hlog.configure(name, settings.log_level)
    port = int(getattr(settings, port_of))
    log.info("service.starting", port=port)
    web.run_app(
        factory(settings),
        host=settings.host,
        port=port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    log.info("service.stopped")
