"""The mapper's core, without NATS: a batch of received events in, for each event its
mapped event (or why it must come back later) out.

Field mapping for the whole batch is pure plans then one contacts write; a batch that
fails for a reason other than the database being away is mapped again event by event,
so the one that fails alone (a poison event) is an error and the others are mapped.
The connector's structure is learned from its first event and later events are checked
against it (drift).  Storage is reached through ports (``libs.domain.ports``): the
MongoDB adapters in the service, the in-memory backends in the unit tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from libs.domain import events, mapping, ports, references, structure
from libs.domain.connector import ConnectorSnapshot
from libs.infra import logging as hlog
from libs.infra.mongo import store as hmongo
from services.mapper.metrics import MapperMetrics

MAX_REMEMBERED_CONFIGS = 10_000
STRUCTURE_TTL_S = 5.0  # the operator may replace a structure; re-read it this often
DISABLED = events.MappingResult(status="disabled", reason="no field mapping configured")


@dataclass(kw_only=True)
class MapperCore:
    store: ports.MapperStore
    contacts: ports.ContactsRepository
    connectors: ports.Connectors
    channels: ports.ChannelIds
    metrics: MapperMetrics
    clock: Callable[[], float] = time.monotonic
    # What the core remembers between batches: structures, and the agents' ids.
    _structures: dict[str, Known] = field(default_factory=dict, init=False)
    _agents_at: float | None = field(default=None, init=False)
    _agent_ids: set[str] = field(default_factory=set, init=False)
    # Each connector version's event references: parsing every template of a config is
    # work for once per version, not for every drifting event.
    _refs: dict[tuple[str, int], list[tuple[str, str]]] = field(default_factory=dict, init=False)

    async def map(
        self, batch: Sequence[events.EventReceived]
    ) -> list[events.EventMapped | Exception]:
        """One item per event, in order: its mapped event, or the error that keeps it
        for later.  Raises one of ``hmongo.UNREACHABLE`` when the contacts cannot be
        written for the database being away: the whole batch comes back."""
        results = await self.results(batch)
        out: list[events.EventMapped | Exception] = []
        for event in batch:
            try:
                out.append(await self.mapped(event, results.get(event.event_id, DISABLED)))
            except Exception as exc:
                out.append(exc)
        return out

    async def results(
        self, batch: Sequence[events.EventReceived]
    ) -> dict[str, events.MappingResult]:
        """The mapping results of the events whose connector maps fields, by event id."""
        try:
            await self._refresh_structures({ev.connector_id for ev in batch})
            return await self._map_contacts(batch)
        except hmongo.UNREACHABLE:
            raise
        except Exception as exc:  # one bad event must not hold the others
            hlog.get().warning("mapper.batch_failed", error=repr(exc)[:300])
            return await self._one_by_one(batch)

    async def _one_by_one(
        self, batch: Sequence[events.EventReceived]
    ) -> dict[str, events.MappingResult]:
        """The batch again event by event: the one that fails alone (a poison event) is
        mapped as an error with the reason and goes on to its steps and the log."""
        results: dict[str, events.MappingResult] = {}
        for event in batch:
            try:
                await self._refresh_structures({event.connector_id})
                results |= await self._map_contacts([event])
            except hmongo.UNREACHABLE:
                raise
            except Exception as exc:
                hlog.get().error("mapper.poison", event_id=event.event_id, error=repr(exc)[:300])
                self.metrics.mappings.labels("error").inc()
                results[event.event_id] = events.MappingResult(
                    status="error", reason=f"mapping failed: {type(exc).__name__}: {exc}"[:500]
                )
        return results

    async def _map_contacts(
        self, batch: Sequence[events.EventReceived]
    ) -> dict[str, events.MappingResult]:
        """Field mapping for a whole batch: pure plans, then one bulk write (F6)."""
        agents = await self._agents()
        plans = []
        for event in batch:
            snap = self.connectors.by_id(event.connector_id)
            if snap is None or snap.config.mapping is None:
                continue
            plans.append(
                (
                    event.event_id,
                    mapping.plan(
                        snap.config.mapping,
                        event.context(),
                        known_channels=self.channels.ids(),
                        known_agents=agents,
                    ),
                )
            )
        if not plans:
            return {}
        results = await self.contacts.apply(plans, events.utcnow())
        for result in results.values():
            self.metrics.mappings.labels(result.status).inc()
        return results

    def _references(self, snap: ConnectorSnapshot) -> list[tuple[str, str]]:
        key = (snap.id, snap.version)
        refs = self._refs.get(key)
        if refs is None:
            if len(self._refs) >= MAX_REMEMBERED_CONFIGS:
                self._refs.clear()  # bounded: old versions are not asked for again
            refs = self._refs[key] = references.event_references(snap.config)
        return refs

    async def _agents(self) -> set[str]:
        """Agent emails, re-read every few seconds (an owner must be a known agent)."""
        now = self.clock()
        if self._agents_at is None or now - self._agents_at > STRUCTURE_TTL_S:
            rows = await self.store.find("agents", {}, limit=100_000)
            self._agent_ids = {str(r["_id"]).lower() for r in rows}  # once, not per event
            self._agents_at = now
        return self._agent_ids

    async def mapped(
        self, event: events.EventReceived, result: events.MappingResult
    ) -> events.EventMapped:
        """The mapped event: the mapping result, and the structure learned or the drift."""
        learned, drift = await self._structure(event)
        return events.EventMapped(
            **event.next_envelope(),
            received=event,
            mapping=result,
            drift=drift,
            structure_learned=learned,
        )

    async def _refresh_structures(self, connector_ids: set[str]) -> None:
        """Re-read stale structures once per connector per batch (the operator may have
        replaced one), not once per event."""
        now = self.clock()
        stale = [
            cid
            for cid in connector_ids
            if cid not in self._structures or now - self._structures[cid].at > STRUCTURE_TTL_S
        ]
        docs = await asyncio.gather(*(self.store.get_structure(cid) for cid in stale))
        for cid, doc in zip(stale, docs, strict=True):
            self._structures[cid] = Known.of(now, structure.from_document(doc) if doc else None)

    async def _structure(
        self, event: events.EventReceived
    ) -> tuple[bool, events.DriftReport | None]:
        """Learn the structure from the first event; flag drift on later ones."""
        cid = event.connector_id
        known = self._structures.get(cid)
        document = event.document()
        if known is None or known.check is None:
            learned = structure.infer(document)
            # Cached before the insert: the batch's other events of this connector, which
            # run while this one waits, compare against it instead of inserting again.
            self._structures[cid] = Known.of(self.clock(), learned)
            inserted = await self.store.insert_structure_if_absent(
                cid, structure.to_document(learned, from_event=event.event_id)
            )
            if inserted:
                self.metrics.structures_learned.inc()
            return inserted, None
        found = known.check(document)
        if not found:
            return False, None
        self.metrics.drift.labels(self.metrics.connector(cid)).inc()
        snap = self.connectors.by_id(cid)
        gone = [*found.missing, *(change.path for change in found.changed)]
        affected = affected_by(self._references(snap), gone) if snap is not None else []
        return False, events.DriftReport(
            added=found.added, missing=found.missing, changed=found.changed, affected=affected
        )


@dataclass(frozen=True, slots=True)
class Known:
    """A connector's structure as last read (None: none learned yet), with its checker."""

    at: float  # monotonic time of the read
    check: structure.DriftChecker | None

    @classmethod
    def of(cls, at: float, learned: structure.Structure | None) -> Known:
        return cls(at, structure.DriftChecker(learned) if learned is not None else None)


def affected_by(refs: Sequence[tuple[str, str]], missing: Sequence[str]) -> list[str]:
    """The mapping/step fields (JSON paths) among ``refs`` (a config's event references)
    that read an attribute the event lacks or holds with another type than the
    structure's."""
    hit = []
    for where, path in refs:
        if any(path == m or path.startswith((m + ".", m + "[")) for m in missing):
            hit.append(f"{where} ({path})")
    return hit
