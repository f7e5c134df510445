"""A service's background loop, tied to a block: the loop runs as a task until the
block ends, then is told to stop and awaited (a graceful stop finishes its round)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def loop_running(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    name: str,
    *,
    wake: asyncio.Event | None = None,
) -> AsyncIterator[None]:
    """``run(stop)`` in a task until the block ends; then ``stop`` is set (and ``wake``,
    the event a loop waiting for work sleeps on, so it notices at once)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        if wake is not None:
            wake.set()
        await task
