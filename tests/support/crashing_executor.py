"""``python -m tests.support.crashing_executor``: the executor, made to crash once.

Fault injection for the crash test, kept out of the product: the step journal's ``record``
is wrapped so that, the first time a step is journaled, the process creates the file named
by ``HOOKLINE_FAULT_EXIT_AFTER_JOURNAL`` and exits hard (no ack, no cleanup) — a crash
between journaling a step and acking its event. Later runs see the file and never crash.
"""

from __future__ import annotations

import os
import runpy
from typing import Any

from services.executor.adapters import journal

FAULT_ENV = "HOOKLINE_FAULT_EXIT_AFTER_JOURNAL"


def _crash_once(marker: str, what: str) -> None:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, what.encode())
    os.close(fd)
    os._exit(137)


def install(marker: str) -> None:
    record = journal.MongoJournal.record

    async def record_then_crash(self: journal.MongoJournal, step_id: str, output: Any) -> None:
        await record(self, step_id, output)
        _crash_once(marker, f"{self.event_id}:{step_id}")

    journal.MongoJournal.record = record_then_crash  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ[FAULT_ENV])
    runpy.run_module("services.executor", run_name="__main__")
