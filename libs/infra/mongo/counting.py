"""Counting the database work a service does: every command it sends and every document
it writes, as Prometheus counters (``hookline_<service>_mongo_commands_total{command}``,
``hookline_<service>_mongo_documents_written_total{collection}``).

PyMongo's command monitoring calls ``started`` for each command before it goes out, on
the event loop's thread; a count is two dictionary lookups.  ``make bench`` divides the
counters' growth over a run by its events: the database round trips and documents
written per event and per stage, counted, not estimated.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from pymongo import monitoring

# The commands that write documents, and the field that lists them.
_WRITES = {"insert": "documents", "update": "updates", "delete": "deletes"}


def written(command_name: str, command: Any) -> int:
    """How many documents a command writes (at most: an update may match none)."""
    if command_name == "findAndModify":
        return 1
    field = _WRITES.get(command_name)
    return len(command.get(field) or ()) if field else 0


class CommandCounter(monitoring.CommandListener):
    def __init__(self, commands: Counter, documents: Counter) -> None:
        self.commands = commands
        self.documents = documents

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        self.commands.labels(name).inc()
        count = written(name, event.command)
        if count:
            self.documents.labels(str(event.command.get(name, ""))).inc(count)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None
