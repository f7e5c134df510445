"""The event contract between services: tagged, versioned msgspec Structs.

Evolution rule: fields are only ever added, with defaults; a breaking change is a
new tag (``...v2``).  Every event carries ``event_id``, ``connector_id``,
``connector_version``, ``occurred_at`` and ``correlation_id``.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, get_args

import msgspec

from libs.domain import jsonvalue
from libs.domain.structure import TypeChange

_ID_PREFIX = os.urandom(8).hex()  # per process; re-drawn in forked children below
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def _reseed() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = os.urandom(8).hex()
    _ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A unique id of 32 hex digits: 64 random bits per process + a 64-bit counter.

    Ids must be unique, not secret (the log is behind the admin token), and one
    ``os.urandom`` system call per event was a measurable share of ingest's CPU.
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


def utcnow() -> datetime:
    return datetime.now(UTC)


# The roots of an event's attributes (F5), the keys of ``EventReceived.context()``:
# what filters, templates and field mappings can read of the event itself.
EVENT_ROOTS = (
    "body",
    "custom_variables",
    "headers",
    "query",
    "method",
    "source_ip",
    "received_at",
    "event_id",
)
# The roots of the event's JSON document, the keys of ``EventReceived.document()``:
# the part of EVENT_ROOTS that structure inference learns and that drifts from one
# event to the next.  The other roots (request metadata) exist on every event whatever
# it sent, so a structure can never lack them.
DOCUMENT_ROOTS = ("body", "custom_variables")
# Those other roots, the request's metadata, with their JSON type and label (for the
# attribute listing): every root of EVENT_ROOTS is a document root or one of these.
METADATA_ROOTS: dict[str, tuple[str, str]] = {
    "method": ("string", "HTTP method"),
    "headers": ("object", "Request headers (lower-case names)"),
    "query": ("object", "Query string parameters"),
    "source_ip": ("string", "Sender's address"),
    "received_at": ("string", "Receive time (ISO 8601)"),
    "event_id": ("string", "Event id"),
}


class Envelope(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    event_id: str
    connector_id: str
    connector_version: int
    occurred_at: datetime
    correlation_id: str

    def next_envelope(self) -> dict[str, Any]:
        """The envelope of the event this one leads to (received -> mapped -> logged):
        the same event, connector version and correlation, occurring now."""
        return {
            "event_id": self.event_id,
            "connector_id": self.connector_id,
            "connector_version": self.connector_version,
            "occurred_at": utcnow(),
            "correlation_id": self.correlation_id,
        }


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """What the sender sent, kept with the event (F2)."""

    method: str
    headers: dict[str, str]
    query: dict[str, Any]
    source_ip: str | None
    content_type: str | None
    size: int


class EventReceived(Envelope, tag="event.received.v1", frozen=True):
    """Ingest stored a request. ``body`` is the parsed body (JSON value, form dict, text;
    None for an empty or binary body); ``raw`` the exact bytes received, the record
    that replays re-parse and signatures are checked on (None only for events logged
    before raw bodies were kept)."""

    request: Request
    body: Any
    custom_variables: dict[str, Any]
    idempotency_key: str | None = None
    replay_of: str | None = None  # set on a replay: the event id it re-runs
    raw: bytes | None = None
    # The connector's own log retention when it has one (else the global setting).
    retention_days: float | None = None

    def document(self) -> dict[str, Any]:
        """The event as the connector's JSON: what structure inference sees."""
        return {"body": self.body, "custom_variables": self.custom_variables}

    def context(self) -> dict[str, Any]:
        """Event attributes (F5) for filters and templates."""
        return {
            "body": self.body,
            "custom_variables": self.custom_variables,
            "headers": self.request.headers,
            "query": self.request.query,
            "method": self.request.method,
            "source_ip": self.request.source_ip,
            "received_at": self.occurred_at.isoformat(),
            "event_id": self.event_id,
        }


# The statuses: each a Literal (the type) and a tuple of its values (for checks,
# metric labels and API enums), the tuple derived from the Literal.
MappingStatus = Literal[
    "created", "updated", "unchanged", "matched_email", "skipped", "error", "disabled"
]
MAPPING_STATUSES: tuple[MappingStatus, ...] = get_args(MappingStatus)


class MappingResult(msgspec.Struct, frozen=True, kw_only=True):
    status: MappingStatus
    reason: str | None = None
    contact_id: str | None = None
    contact: dict[str, Any] | None = None  # the contact after the upsert (system attrs)
    errors: list[str] = msgspec.field(default_factory=list)


class DriftReport(msgspec.Struct, frozen=True, kw_only=True):
    added: list[str] = msgspec.field(default_factory=list)
    missing: list[str] = msgspec.field(default_factory=list)
    changed: list[TypeChange] = msgspec.field(default_factory=list)  # retyped values
    affected: list[str] = msgspec.field(default_factory=list)  # mappings/steps hit


class EventMapped(Envelope, tag="event.mapped.v1", frozen=True):
    received: EventReceived
    mapping: MappingResult
    drift: DriftReport | None = None
    structure_learned: bool = False
    replay_of: str | None = None


StepStatus = Literal["succeeded", "failed", "skipped", "filtered"]
STEP_STATUSES: tuple[StepStatus, ...] = get_args(StepStatus)


class StepLog(msgspec.Struct, frozen=True, kw_only=True):
    step_id: str
    type: str
    status: StepStatus
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0


# An event's status in the log: ``received`` until the executor's verdict (one of
# VERDICTS) arrives.  No executor writes ``filtered``: a filtered event's verdict is
# ``succeeded`` and its filter step's status is ``filtered``; the log accepts it.
EventStatus = Literal["received", "succeeded", "failed", "filtered"]
EVENT_STATUSES: tuple[EventStatus, ...] = get_args(EventStatus)
Verdict = Literal["succeeded", "failed"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
# A request that never became an event is in the log too (F12): refused (``rejected``,
# with its reason and raw bytes) or a provider's subscription handshake, answered.
RequestStatus = Literal["rejected", "handshake"]
REQUEST_STATUSES: tuple[RequestStatus, ...] = get_args(RequestStatus)


class ExecutionLogged(Envelope, tag="event.logged.v1", frozen=True):
    """The executor's verdict on one event: one per event (per replay)."""

    status: EventStatus
    steps: list[StepLog]
    received: EventReceived
    mapping: MappingResult | None = None
    drift: DriftReport | None = None
    error: str | None = None
    attempts: int = 1
    replay_of: str | None = None
    dry_run: bool = False
    dead_lettered: bool = False  # failed after the last attempt, sent to the dead letters


Event = EventReceived | EventMapped | ExecutionLogged

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
encode = _encoder.encode


def decoder(kind: type[T]) -> jsonvalue.Decoder[T]:
    """One typed decoder per consumer, built once (decoding is the hot path); exact for
    integers of any size (see ``libs.domain.jsonvalue``)."""
    return jsonvalue.Decoder(kind)


class IngestNotice(Envelope, tag="ingest.notice.v1", frozen=True):
    """A request that was not stored as a new event: rejected (4xx), a duplicate, or a
    handshake answered.  A rejected or handshake notice carries the request and its raw
    bytes (at most ``NOTICE_RAW_MAX``), and becomes a log entry of that status."""

    kind: Literal["rejected", "duplicate", "handshake"]
    reason: str
    status: int
    code: str = ""  # the refusal's reason code (a metric label), or the handshake kind
    request: Request | None = None
    raw: bytes | None = None
    raw_truncated: bool = False
    retention_days: float | None = None  # as for EventReceived


# A refused body is evidence, not data: this much of it is kept with the log entry,
# so a flood of forged megabyte bodies costs the log little.
NOTICE_RAW_MAX = 64 * 1024


LogStreamEvent = ExecutionLogged | IngestNotice


class DryRunRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Config → executor (NATS request/reply): run these steps on this event, no side
    effects; the reply is an ``ExecutionLogged`` with ``dry_run=True``."""

    config: Any  # a ConnectorConfig as plain data (validated by the sender)
    event: EventMapped
