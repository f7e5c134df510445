"""The config API's request and response bodies, as msgspec Structs with constraints.

One definition per shape: the handlers decode into these and return them, and the
OpenAPI spec (``services.config.openapi``) is generated from them.  A constraint is
stated once, with ``Meta``: msgspec enforces it when a body is decoded and writes it
into the JSON Schema.  What a constraint alone cannot say is in ``Meta.extra``, read
by :func:`decode`: ``code`` (the error code of this field's 4xx, as the API always
answered), ``error`` (that error's message) and ``invalid`` (the problem's message).

Timestamps are the ISO 8601 strings the API has always sent (``datetime.isoformat``),
so they are ``str`` fields whose schema says ``date-time``.  A Struct's docstring is
its schema's description, verbatim: one line each.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from libs.domain import contacts, events
from libs.domain.channels import SECRET_FIELDS, HttpChannel, SmtpChannel, WhatsAppChannel
from libs.domain.connector import ConnectorConfig, ResponseConfig
from libs.domain.structure import Field
from libs.domain.values import INT64_MAX

# ======================================================================== shared types

Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
VersionNumber = Annotated[
    int, Meta(ge=1, le=INT64_MAX, description="Versions are MongoDB int64s, from 1.")
]
Count = Annotated[int, Meta(ge=0)]
ATTRIBUTE_NAME = contacts.ATTRIBUTE_NAME_PATTERN  # the one rule (libs.domain.contacts)
CHANNEL_ID = "^[A-Za-z0-9_-]{1,64}(?!\n)$"
EMAIL = contacts.EMAIL_INPUT_PATTERN  # what normalize_email accepts; blanks are trimmed
MAX_NAME = 200
MAX_DESCRIPTION = 1000
MAX_GRACE_S = 7 * 86400  # an old URL works for a week at most after a rotation
# The statuses the log can be filtered by: received, the verdicts (VERDICTS) and the
# requests that never became events (REQUEST_STATUSES), and the failed events that were
# dead-lettered (their status is failed); test_vocabulary checks that.
EventStatusQuery = Literal[
    "received", "succeeded", "failed", "rejected", "handshake", "dead_lettered"
]
EVENT_STATUSES = get_args(EventStatusQuery)


def _extra(description: str | None = None, **extra: str) -> Meta:
    """``Meta`` with what :func:`decode` reads: ``code``, ``error``, ``invalid``."""
    return Meta(description=description, extra=extra)


# ======================================================================== errors


class Problem(Struct):
    path: Annotated[str, Meta(description="JSON path of the problem, e.g. $.steps[0].when")]
    message: str


class ConnectorRef(Struct):
    id: str
    name: str


class ErrorDetail(Struct, kw_only=True):
    """Also `problems` (422), `latest_version` (stale save), `connectors` (channel in use)."""

    code: Annotated[str, Meta(description="machine-readable, snake_case")]
    message: Annotated[str, Meta(description="for humans")]
    problems: list[Problem] | UnsetType = UNSET
    latest_version: int | UnsetType | None = UNSET
    connectors: list[ConnectorRef] | UnsetType = UNSET


class Error(Struct):
    """Every error of every Hookline API."""

    error: ErrorDetail


# ======================================================================== connectors

ConnectorName = Annotated[
    Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=r"\S")],
    _extra(
        code="invalid_name", error=f"name must be a non-empty string of ≤ {MAX_NAME} characters"
    ),
]
Config = Annotated[
    ConnectorConfig | None,
    _extra(
        "Omitted or null: the default configuration.",
        code="invalid_config",
        error="the configuration is invalid",
    ),
]


class Connector(Struct, kw_only=True):
    id: str
    name: str
    url: Annotated[
        str,
        Meta(
            description="The secret connecting URL (`<HOOKLINE_PUBLIC_URL>/c/<token>`).",
            extra_json_schema={"format": "uri"},
        ),
    ]
    version: VersionNumber
    config: ConnectorConfig
    created_at: Time
    updated_at: Time
    paused: Annotated[
        bool,
        Meta(
            description="Paused: events are stored, answered and mapped, but their steps "
            "wait (held) until `POST …/resume`, then run in arrival order."
        ),
    ] = False


class ConnectorList(Struct):
    items: list[Connector]


class ConnectorCreate(Struct, kw_only=True):
    """Without `config`, the default configuration."""

    config: Config = None  # checked before the name, as it always was
    name: ConnectorName


class ConnectorSave(Struct, kw_only=True):
    version: Annotated[
        VersionNumber,
        _extra(
            "The version this save is based on; 409 if it is not the latest.",
            code="version_required",
            error="the body must carry the integer `version` this save is based on",
        ),
    ]
    config: Config = None
    name: ConnectorName | UnsetType = UNSET


class RotateUrl(Struct, kw_only=True):
    grace_seconds: Annotated[
        Annotated[int, Meta(ge=0, le=MAX_GRACE_S)],
        _extra(
            "How long the old URL keeps working (0: it dies at once).",
            code="invalid_grace",
            error=f"grace_seconds must be an integer in 0..{MAX_GRACE_S}",
        ),
    ] = 0


class Version(Struct, kw_only=True):
    version: int
    saved_at: Time
    config: ConnectorConfig


class VersionList(Struct):
    items: Annotated[list[Version], Meta(max_length=20)]


# ======================================================================== structure


class StructureWarning(Struct):
    path: str
    attribute: str
    message: str


class Structure(Struct, kw_only=True):
    sample: Annotated[Any, Meta(description="The code view: the event JSON it came from.")]
    schema: Annotated[dict[str, Any], Meta(description="JSON Schema (draft 2020-12) of the event.")]
    fields: Annotated[list[Field], Meta(description="The design view.")]
    truncated: Annotated[bool, Meta(description="A size bound cut the structure.")]
    from_event: str | None
    updated_at: Time | None
    warnings: Annotated[
        list[StructureWarning] | UnsetType,
        Meta(
            description="After a replacement: every mapping/step reference into the event "
            "that the new structure lacks."
        ),
    ] = UNSET


class StructureReplace(Struct, kw_only=True):
    sample: Annotated[
        Any,
        _extra(
            'The event JSON: {"body": ..., "custom_variables": {...}}.',
            code="sample_required",
            error='send {"sample": {"body": ..., "custom_variables": {...}}}',
        ),
    ]


class Attribute(Struct, kw_only=True):
    path: Annotated[str, Meta(description="What templates and filters refer to.")]
    type: str
    example: Any | UnsetType = UNSET
    label: str | UnsetType = UNSET
    step_id: str | UnsetType = UNSET
    op: str | UnsetType = UNSET


class ConnectorAttributes(Struct, kw_only=True):
    event: list[Attribute]
    system: list[Attribute]
    subscriber: list[Attribute]
    formatter: list[Attribute]


# ======================================================================== events, stats


class EventQuery(Struct, kw_only=True):
    status: Annotated[
        EventStatusQuery | UnsetType,
        _extra("Only this status.", error=f"status must be one of {sorted(EVENT_STATUSES)}"),
    ] = UNSET
    limit: Annotated[
        Annotated[int, Meta(ge=1, le=500)], _extra(error="limit must be an integer in 1..500")
    ] = 50
    before: Annotated[
        str | UnsetType,
        Meta(
            description="An ISO 8601 time: only events received before it; or a page's "
            "`next_before` cursor."
        ),
    ] = UNSET
    received_after: Annotated[
        str | UnsetType, Meta(description="An ISO 8601 time: only events received since.")
    ] = UNSET
    received_before: Annotated[
        str | UnsetType, Meta(description="An ISO 8601 time: only events received before.")
    ] = UNSET


class EventSummary(Struct, kw_only=True):
    event_id: str
    received_at: Time | None
    status: Annotated[
        str | None,
        Meta(description="received, succeeded, failed, filtered, rejected or handshake"),
    ]
    connector_version: int | None = None
    error: str | None = None
    reason: Annotated[
        str | None,
        Meta(
            description="A rejected request's reason code (bad_signature, …) or a handshake's kind."
        ),
    ] = None
    replay_of: Annotated[
        str | None, Meta(description="The event this one replays (a replay's original).")
    ] = None


class EventList(Struct, kw_only=True):
    items: list[EventSummary]
    next_before: Annotated[
        str | None,
        Meta(
            description="A cursor (`<received_at>,<event_id>`): pass it as ?before= for the "
            "next (older) page; null on the last page."
        ),
    ]


class RawBody(Struct, kw_only=True):
    """The exact bytes received: as text when they are UTF-8, else base64."""

    encoding: Literal["utf-8", "base64"]
    data: str
    size: Count


class EventData(Struct, kw_only=True):
    body: Any
    custom_variables: Any


class EventDetail(EventSummary, kw_only=True):
    """One logged event, its parts as the pipeline carried them (a degraded one: some)."""

    request: Annotated[dict[str, Any] | None, Meta(description="See Request.")]
    raw_body: RawBody | None
    degraded: Annotated[str | None, Meta(description="Why parts were not stored.")]
    event: EventData
    mapping: Annotated[dict[str, Any] | None, Meta(description="See MappingResult.")]
    drift: Annotated[dict[str, Any] | None, Meta(description="See DriftReport.")]
    execution: Annotated[
        list[dict[str, Any]], Meta(description="One StepLog per step that ran or was skipped.")
    ]
    attempts: int | None
    outcome_at: Time | None
    http_status: Annotated[
        int | None, Meta(description="What a rejected request or a handshake was answered.")
    ] = None
    note: Annotated[str | None, Meta(description="What a handshake was answered.")] = None
    raw_truncated: Annotated[
        bool, Meta(description="A rejected request's body is kept up to 64 KiB.")
    ] = False
    dead_lettered: Annotated[
        bool, Meta(description="Failed after the last attempt and sent to the dead letters.")
    ] = False
    expire_at: Annotated[
        Time | None, Meta(description="When retention removes this entry from the log.")
    ] = None


OptionalVersion = Annotated[
    VersionNumber | UnsetType,
    _extra(
        "A kept version (default: the current).",
        code="invalid_version",
        error="version must be a positive integer",
    ),
]


class Replay(Struct, kw_only=True):
    version: OptionalVersion = UNSET


class ReplayAccepted(Struct, kw_only=True):
    event_id: str
    replay_of: str
    version: int


Values = Annotated[
    dict[str, Any] | UnsetType,
    Meta(
        description='Values to match, nested as in the payload (`{"order": {"id": 5}}`); '
        "a list is any of its values; compared as text, as the log's search does."
    ),
]


class BulkReplay(Struct, kw_only=True, forbid_unknown_fields=True):
    """Which logged events to run again; `plan` only counts them."""

    status: Annotated[
        Literal["failed", "dead_lettered", "any"],
        _extra("Events with this verdict (any: every event).", code="invalid_status"),
    ] = "failed"
    received_after: Annotated[
        str | UnsetType, Meta(description="An ISO 8601 time: events received since.")
    ] = UNSET
    received_before: Annotated[
        str | UnsetType, Meta(description="An ISO 8601 time: events received before.")
    ] = UNSET
    body: Values = UNSET
    headers: Values = UNSET
    custom_variables: Values = UNSET
    version: OptionalVersion = UNSET
    plan: Annotated[bool, Meta(description="Only count the events it would replay.")] = False


class BulkReplayPlan(Struct, kw_only=True):
    matched: int


class BulkReplayAccepted(Struct, kw_only=True):
    """The job's id (for its progress) and how many events it selected."""

    id: str
    matched: int


class BulkReplayJob(Struct, kw_only=True):
    """A bulk replay: `done` of `matched` events replayed so far."""

    id: str
    connector_id: str
    state: Literal["running", "done", "cancelled"]
    matched: int
    done: int
    skipped: Annotated[
        int, Meta(description="Matched events that could not run again (e.g. no longer parse).")
    ]
    version: int
    rate_per_s: float
    selection: Annotated[dict[str, Any], Meta(description="The request's selection, as sent.")]
    created_at: Time
    finished_at: Time | None = None
    error: str | None = None


class BulkReplayList(Struct, kw_only=True):
    items: list[BulkReplayJob]


class DryRun(Struct, kw_only=True):
    """`config` (an unsaved configuration) wins over `version`."""

    version: OptionalVersion = UNSET
    config: Config | UnsetType = UNSET


class ResponsePreview(Struct, kw_only=True):
    """A Map Response (saved or not) to render against a logged event."""

    response: ResponseConfig


class ResponsePreviewResult(Struct, kw_only=True):
    """What the sender of that event would be answered: ``error`` when the template
    does not render (ingest then answers the default JSON)."""

    status: int
    content_type: str
    body: str
    error: str | None = None


class DryRunResult(Struct, kw_only=True):
    event_id: str
    version: int
    status: str
    error: str | None
    execution: list[events.StepLog]
    dry_run: Literal[True] = True


class Stats(Struct, kw_only=True):
    received: Count
    succeeded: Count
    failed: Count
    duplicates: Count
    rejected: Count
    handshakes: Count
    since: Annotated[Time, Meta(description="Counting started then: creation or the last reset.")]
    paused: bool = False
    held: Annotated[
        Count, Meta(description="Events waiting for the connector to be resumed (now).")
    ] = 0


# ======================================================================== CRM


class ContactQuery(Struct, kw_only=True):
    mobile: Annotated[
        str, Meta(description="Any format; normalised to E.164 (default region US).")
    ] = ""
    email: Annotated[str, Meta(description="Compared case-insensitively.")] = ""
    limit: Annotated[
        Annotated[int, Meta(ge=1, le=200)], _extra(error="limit must be an integer in 1..200")
    ] = 50


class Contact(Struct, kw_only=True):
    id: str
    name: str | None = None
    email: str | None = None
    mobile: Annotated[str | None, Meta(description="E.164")] = None
    time_zone: str | None = None
    attributes: Annotated[dict[str, Any], Meta(description="Subscriber attributes by name.")]
    owner: str | None = None
    channel: str | None = None
    created_at: Time | None = None
    updated_at: Time | None = None


class ContactList(Struct):
    items: list[Contact]


AttributeType = Literal["text", "number", "date", "boolean"]


class SubscriberAttribute(Struct, kw_only=True):
    name: str
    type: AttributeType
    description: str
    created_at: Time | None


class SubscriberAttributeList(Struct):
    items: list[SubscriberAttribute]


class SubscriberAttributeCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[
        Annotated[str, Meta(pattern=ATTRIBUTE_NAME)],
        _extra(
            invalid="must be a lower-case letter followed by up to 63 lower-case letters, "
            "digits or underscores (e.g. city, plan_2)"
        ),
    ]
    type: Annotated[AttributeType, _extra(invalid="must be one of text, number, date, boolean")]
    description: Annotated[
        Annotated[str, Meta(max_length=MAX_DESCRIPTION)] | None,
        _extra(invalid=f"must be a string of ≤ {MAX_DESCRIPTION} characters"),
    ] = ""


class Agent(Struct, kw_only=True):
    email: str
    name: str
    created_at: Time | None


class AgentList(Struct):
    items: list[Agent]


class AgentCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[
        Annotated[str, Meta(pattern=EMAIL, max_length=254)],
        _extra(invalid="must be an email address (name@example.com)"),
    ]
    name: Annotated[
        Annotated[str, Meta(max_length=MAX_NAME)] | None,
        _extra(invalid=f"must be a string of ≤ {MAX_NAME} characters"),
    ] = ""


# Channels: the request bodies are the channel Structs' own fields (libs.domain.channels),
# with ``id`` optional on create (generated) and the secrets optional on replace (kept).
# Fields other than the required ones are left out when not sent, so a replacement can
# tell what the client changed.
CHANNEL_STRUCTS = (WhatsAppChannel, SmtpChannel, HttpChannel)
ChannelId = Annotated[
    Annotated[str, Meta(pattern=CHANNEL_ID)] | None,
    _extra(
        "Unique; generated (ch_…) when omitted.",
        invalid="must be 1-64 characters: letters, digits, '_' or '-'",
    ),
]


def _channel_body(struct: type[Struct], suffix: str, optional: tuple[str, ...]) -> type[Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(struct):
        kind: Any = ChannelId if f.name == "id" else f.type
        if f.required and f.name not in optional:
            fields.append((f.name, kind))
        else:
            fields.append((f.name, kind | UnsetType, UNSET))
    config = struct.__struct_config__
    return msgspec.defstruct(
        struct.__name__ + suffix,
        fields,
        tag=config.tag,
        tag_field=config.tag_field,
        kw_only=True,
        forbid_unknown_fields=True,
        module=__name__,
    )


CHANNEL_CREATE = {
    str(s.__struct_config__.tag): _channel_body(s, "Create", ("id",)) for s in CHANNEL_STRUCTS
}
CHANNEL_REPLACE = {
    str(s.__struct_config__.tag): _channel_body(s, "Replace", ("id", *SECRET_FIELDS))
    for s in CHANNEL_STRUCTS
}
# The unions the spec documents (a body's ``type`` picks the member).


def _union(members: Any) -> Any:
    out = None
    for member in members:
        out = member if out is None else out | member
    return out


ChannelCreate: Any = Annotated[
    _union(CHANNEL_CREATE.values()),
    Meta(description="A new channel; `id` is generated (ch_…) when omitted."),
]
ChannelReplace: Any = Annotated[
    _union(CHANNEL_REPLACE.values()),
    Meta(
        description="The whole channel. Secrets omitted, or sent back redacted as GET "
        "showed them ('…' + last 4), keep their stored value; `id` and `type` cannot change."
    ),
]
ChannelView = Annotated[
    WhatsAppChannel | SmtpChannel | HttpChannel,
    Meta(
        description="A channel as the API shows it: secrets (`access_token`, `password`) "
        "redacted to '…' + their last 4 characters, HTTP header values to '…'."
    ),
]


class ChannelList(Struct):
    items: list[ChannelView]


# ======================================================================== ops


class Health(Struct):
    status: Literal["ok"]


class Ready(Struct):
    ready: bool


# ======================================================================== console


class ConsoleLogin(Struct, kw_only=True):
    token: Annotated[str, Meta(max_length=1000, description="The admin token.")]


class ConsoleSession(Struct, kw_only=True):
    """A console session: the cookie is set HttpOnly; the CSRF token goes in
    ``X-CSRF-Token`` on every change."""

    csrf: str
    expires_in: Annotated[int, Meta(description="Seconds until the session ends.")]


class ConsoleLoggedOut(Struct, kw_only=True):
    logged_out: Literal[True] = True
