"""The mapper's core over the in-memory backends (no NATS, no database): a batch's
contacts mapped in one write, counted by result, the structure learned once and drift
flagged, a poison event isolated, and the batch kept whole while the database is away.
The backends pass the same contract as MongoDB (tests/integration/test_port_contracts.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from libs.domain import events
from libs.domain.connector import ConnectorConfig, ConnectorSnapshot, FieldMapping
from libs.infra.mongo import store as hmongo
from libs.infra.mongo.contacts import Contacts
from libs.infra.nats.channel_registry import ChannelRegistry
from libs.infra.nats.registry import Registry
from services.mapper.core import STRUCTURE_TTL_S, MapperCore
from services.mapper.metrics import MapperMetrics
from tests.support.memory import MemoryStore

MAPPING = FieldMapping(mobile="body.phone", name="body.name", attributes={"city": "body.city"})
_ids = itertools.count()


class Clock:
    """Monotonic seconds that a test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.registry = Registry()
        self.metrics = MapperMetrics(CollectorRegistry())
        self.clock = Clock()
        self.core = MapperCore(
            store=self.store,
            contacts=Contacts(self.store.contacts),
            connectors=self.registry,
            channels=ChannelRegistry(),
            metrics=self.metrics,
            clock=self.clock,
        )

    def connector(self, cid: str, mapping: FieldMapping | None = MAPPING) -> None:
        config = ConnectorConfig(mapping=mapping)
        self.registry.apply(
            cid, ConnectorSnapshot(id=cid, name=cid, token=cid, version=1, config=config)
        )

    def counted(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "hookline_mapper_mappings_total", {"result": result}
        )
        return value or 0.0

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def received(cid: str, body: Any) -> events.EventReceived:
    event_id = f"e{next(_ids)}"
    return events.EventReceived(
        event_id=event_id,
        connector_id=cid,
        connector_version=1,
        occurred_at=events.utcnow(),
        correlation_id=event_id,
        request=events.Request(
            method="POST", headers={}, query={}, source_ip=None, content_type=None, size=0
        ),
        body=body,
        custom_variables={},
    )


def mapped(outcomes: list[events.EventMapped | Exception]) -> list[events.EventMapped]:
    assert all(isinstance(o, events.EventMapped) for o in outcomes), outcomes
    return outcomes  # type: ignore[return-value]


@pytest.fixture
def setup() -> Setup:
    s = Setup()
    s.connector("c1")
    return s


async def test_new_and_known_numbers_in_one_batch_are_one_write_and_counted(
    setup: Setup,
) -> None:
    first = [received("c1", {"phone": f"+1415555010{i}", "name": f"N{i}"}) for i in range(3)]
    out = mapped(await setup.core.map(first))
    assert [m.mapping.status for m in out] == ["created"] * 3
    assert setup.store.contacts.calls == ["insert"]  # new numbers: one call
    setup.store.contacts.calls.clear()
    second = [
        received("c1", {"phone": "+14155550100", "name": "N0", "city": "Oslo"}),  # new: city
        received("c1", {"phone": "+1 415 555 0101", "name": "N1"}),  # brings nothing new
        received("c1", {"phone": "+14155550199", "name": "New"}),
    ]
    out = mapped(await setup.core.map(second))
    assert [m.mapping.status for m in out] == ["updated", "unchanged", "created"]
    assert setup.store.contacts.calls == ["insert", "find", "update"]  # one write of one
    assert out[0].mapping.contact is not None
    assert out[0].mapping.contact["attributes"] == {"city": "Oslo"}
    assert out[1].mapping.contact_id == (await setup.store.contacts.find({"name": "N1"}))[0]["_id"]
    assert [setup.counted(s) for s in ("created", "updated", "unchanged")] == [4.0, 1.0, 1.0]
    assert len(setup.store.contacts) == 4


async def test_an_event_without_a_mapping_or_identity(setup: Setup) -> None:
    setup.connector("plain", mapping=None)
    out = mapped(await setup.core.map([received("plain", {"x": 1}), received("c1", {"x": 1})]))
    assert [m.mapping.status for m in out] == ["disabled", "skipped"]
    assert setup.counted("skipped") == 1.0 and setup.counted("disabled") == 0.0
    assert len(setup.store.contacts) == 0


async def test_the_structure_is_learned_once_and_drift_names_the_mapping_it_affects(
    setup: Setup,
) -> None:
    shaped = {"phone": "+14155550100", "name": "Ann", "city": "Oslo"}
    out = mapped(await setup.core.map([received("c1", shaped), received("c1", shaped)]))
    assert [(m.structure_learned, m.drift) for m in out] == [(True, None), (False, None)]
    assert setup.sample("hookline_mapper_structures_learned_total") == 1.0
    learned = await setup.store.get_structure("c1")
    assert learned is not None and learned["from_event"] == out[0].event_id

    drifted = {"phone": 4155550100, "name": "Ann", "zip": "0150"}  # city gone, phone a number
    (report,) = mapped(await setup.core.map([received("c1", drifted)]))
    assert report.drift is not None
    assert report.drift.missing == ["body.city"]
    assert [(c.path, c.expected, c.actual) for c in report.drift.changed] == [
        ("body.phone", "string", "integer")
    ]
    assert report.drift.added == ["body.zip"]
    assert any("$.mapping.mobile" in a for a in report.drift.affected)
    assert any("$.mapping.attributes.city" in a for a in report.drift.affected)
    assert report.mapping.status == "unchanged"  # the number is still read as the same
    labels = {"connector": setup.metrics.connector("c1")}
    assert setup.sample("hookline_mapper_drift_total", labels) == 1.0


async def test_a_replaced_structure_is_read_again_after_its_time(setup: Setup) -> None:
    (first,) = mapped(await setup.core.map([received("c1", {"phone": "+14155550100"})]))
    assert first.structure_learned
    # The operator replaces the structure with one learned from another shape.
    other = Setup()
    other.connector("c1")
    await other.core.map([received("c1", {"phone": "+14155550100", "tier": "gold"})])
    replacement = await other.store.get_structure("c1")
    assert replacement is not None
    setup.store.structures.delete({})
    assert await setup.store.insert_structure_if_absent("c1", replacement)
    same = {"phone": "+14155550100"}
    (cached,) = mapped(await setup.core.map([received("c1", same)]))
    assert cached.drift is None  # still the structure it read
    setup.clock.now += STRUCTURE_TTL_S + 0.1
    (fresh,) = mapped(await setup.core.map([received("c1", same)]))
    assert fresh.drift is not None and fresh.drift.missing == ["body.tier"]


async def test_a_poison_event_is_mapped_as_an_error_and_the_others_are_mapped(
    setup: Setup,
) -> None:
    """A structure document the mapper cannot read (another version wrote it) fails its
    connector's events alone: the batch is retried event by event."""
    setup.connector("broken")
    await setup.store.insert_structure_if_absent("broken", {"fields": "not a list"})
    batch = [
        received("c1", {"phone": "+14155550100"}),
        received("broken", {"phone": "+14155550101"}),
        received("c1", {"phone": "+14155550102"}),
    ]
    out = mapped(await setup.core.map(batch))
    assert [m.mapping.status for m in out] == ["created", "error", "created"]
    assert out[1].mapping.reason is not None
    assert out[1].mapping.reason.startswith("mapping failed: KeyError")
    assert (setup.counted("error"), setup.counted("created")) == (1.0, 2.0)
    assert len(setup.store.contacts) == 2
    assert not out[1].structure_learned  # the document there is kept, not overwritten


async def test_the_database_away_keeps_the_whole_batch(setup: Setup) -> None:
    batch = [received("c1", {"phone": "+14155550100"}), received("c1", {"phone": "+14155550101"})]
    setup.store.offline = True
    with pytest.raises(hmongo.UNREACHABLE):
        await setup.core.map(batch)
    assert setup.counted("error") == 0.0  # not a poison: nothing was mapped
    setup.store.offline = False
    out = mapped(await setup.core.map(batch))
    assert [m.mapping.status for m in out] == ["created", "created"]


async def test_a_structure_that_cannot_be_written_keeps_only_its_event(setup: Setup) -> None:
    """Contacts written, then the database goes away before the structure insert: the
    event comes back later (its outcome is the error), its contact is not counted twice
    when it does: the second mapping brings nothing new."""
    event = received("c1", {"phone": "+14155550100"})
    results = await setup.core.results([event])
    setup.store.structures.offline = True
    with pytest.raises(hmongo.UNREACHABLE):
        await setup.core.mapped(event, results[event.event_id])
    setup.store.structures.offline = False
    (again,) = mapped(await setup.core.map([event]))
    assert (again.mapping.status, again.structure_learned) == ("unchanged", False)
    assert len(setup.store.contacts) == 1
    # The structure it inferred was kept in memory, not stored: once that is stale, the
    # next event reads none and stores its own.
    assert await setup.store.get_structure("c1") is None
    setup.clock.now += STRUCTURE_TTL_S + 0.1
    (later,) = mapped(await setup.core.map([received("c1", {"phone": "+14155550100"})]))
    assert later.structure_learned


async def test_drift_reads_the_references_of_the_connectors_current_version(
    setup: Setup,
) -> None:
    """The references are remembered per connector version: a saved version that no
    longer reads ``body.city`` is not reported as affected by it."""
    shaped = {"phone": "+14155550100", "name": "Ann", "city": "Oslo"}
    await setup.core.map([received("c1", shaped)])
    drifted = {"phone": "+14155550100", "name": "Ann"}  # city gone
    (first,) = mapped(await setup.core.map([received("c1", drifted)]))
    assert first.drift is not None
    assert any("$.mapping.attributes.city" in a for a in first.drift.affected)
    without_city = msgspec.structs.replace(MAPPING, attributes={})
    config = ConnectorConfig(mapping=without_city)
    snap = ConnectorSnapshot(id="c1", name="c1", token="c1", version=2, config=config)
    setup.registry.apply("c1", snap)
    (second,) = mapped(await setup.core.map([received("c1", drifted)]))
    assert second.drift is not None and second.drift.missing == ["body.city"]
    assert second.drift.affected == []
