"""The ports of the core: what the mapper and the projector ask of storage, and nothing
else.  ``libs.infra.mongo`` implements them over MongoDB (``Store``, ``Contacts``,
``MongoContactDocuments``); ``tests.support.memory`` implements them in memory, so the
core's batching, counting and drift logic is unit-tested without servers.  Both pass
the same contract tests (``tests/integration/test_port_contracts.py``).

Documents are plain dicts as the database holds them.  ``ContactDocuments`` speaks the
small subset of MongoDB's query language the contacts repository writes: equality on
(dotted) fields, ``$in``; ``$set``, ``$setOnInsert`` and ``$unset`` updates, upserts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from libs.domain.connector import ConnectorSnapshot
from libs.domain.contacts import Plan
from libs.domain.events import MappingResult

__all__ = [
    "ALL",
    "DUPLICATE_KEY",
    "BulkOutcome",
    "ChannelIds",
    "Connectors",
    "ContactDocuments",
    "ContactsRepository",
    "Directory",
    "DuplicateKey",
    "EventLog",
    "Find",
    "MapperStore",
    "ProjectionStore",
    "StatsStore",
    "StructureStore",
    "Update",
    "WriteFailure",
]

Doc = dict[str, Any]
DUPLICATE_KEY = 11000  # the write error code of a unique index refusing a value


# ---------------------------------------------------------------- the mapper's


class ContactsRepository(Protocol):
    """Writes a batch of contact plans: one result per event id (``Contacts.apply``)."""

    async def apply(
        self, plans: Sequence[tuple[str, Plan]], now: datetime
    ) -> dict[str, MappingResult]: ...


class StructureStore(Protocol):
    """A connector's learned structure; the first event's wins."""

    async def get_structure(self, connector_id: str) -> Doc | None: ...

    async def insert_structure_if_absent(self, connector_id: str, doc: Doc) -> bool: ...


class Directory(Protocol):
    """CRM rows by collection (the mapper reads the agents)."""

    async def find(self, collection: str, query: Doc, limit: int = 100) -> list[Doc]: ...


class MapperStore(StructureStore, Directory, Protocol):
    """Everything the mapper's core reads and writes besides contacts."""


class Connectors(Protocol):
    """The connectors as last published (``Registry``)."""

    def by_id(self, connector_id: str) -> ConnectorSnapshot | None: ...


class ChannelIds(Protocol):
    """The ids of the known channels (``ChannelRegistry``)."""

    def ids(self) -> Collection[str]: ...


# ---------------------------------------------------------------- the projector's


class EventLog(Protocol):
    """The event log's writes.  ``refused``, when given, receives the ids (and reasons)
    of entries the database cannot hold instead of the call failing."""

    async def record_received(
        self, docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> set[str]:
        """Insert entries for received events; the ids that were new (an entry that
        exists already is left as it is)."""
        ...

    async def record_outcomes(
        self, docs: Sequence[Doc], refused: dict[str, str] | None = None
    ) -> tuple[set[str], set[str]]:
        """Write verdicts: (ids whose first verdict this is, ids whose entry this
        created).  A second verdict for an entry changes nothing."""
        ...


class StatsStore(Protocol):
    """Per-connector counters."""

    async def add_stats(self, increments: Mapping[str, Mapping[str, int]]) -> None: ...


class ProjectionStore(EventLog, StatsStore, Protocol):
    """Everything the projector writes."""


# ---------------------------------------------------------------- the contacts'


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """One document of a bulk write the database refused."""

    code: int
    message: str

    @property
    def duplicate(self) -> bool:
        return self.code == DUPLICATE_KEY


@dataclass(frozen=True, slots=True)
class Update:
    """One update of a bulk write: ``update`` applied to the first match of ``filter``;
    with ``upsert``, a document made of the filter's equalities, ``$setOnInsert`` and
    ``$set`` is inserted when nothing matches."""

    filter: Doc
    update: Doc
    upsert: bool = False


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    upserted: set[int] = field(default_factory=set)  # indexes of updates that inserted
    failures: dict[int, WriteFailure] = field(default_factory=dict)  # by index


class DuplicateKey(Exception):
    """A single write refused by a unique index."""


class Find(NamedTuple):
    """How a find reads: which fields (a projection), in what order, how many (0: all)."""

    projection: Doc | None = None
    sort: Sequence[tuple[str, int]] = ()
    limit: int = 0


ALL = Find()


class ContactDocuments(Protocol):
    """The contacts collection, one method per round trip.  ``_id`` is unique, and so is
    ``mobile`` where present (a sparse index)."""

    async def insert_many(self, docs: Sequence[Doc]) -> dict[int, WriteFailure]:
        """Unordered: every document is tried; the failures by index."""
        ...

    async def find(self, query: Doc, how: Find = ALL) -> list[Doc]: ...

    async def bulk_update(self, updates: Sequence[Update]) -> BulkOutcome:
        """Unordered: every update is tried, in order."""
        ...

    async def update_one(self, query: Doc, update: Doc) -> bool:
        """Whether a document matched; raises :class:`DuplicateKey`."""
        ...
