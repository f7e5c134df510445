"""structlog JSON logging: one event per line, with context bound per service and per event."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """Configure process-wide JSON logging and return the service's root logger."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    # Third-party libraries log through stdlib; keep their chatter at WARNING.
    for noisy in ("aiohttp.access", "asyncio", "pymongo", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    return get()


def get() -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger()
    return logger


bind = structlog.contextvars.bound_contextvars
