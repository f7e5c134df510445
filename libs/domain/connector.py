"""The connector configuration: the one document an operator saves and versions.

Everything here is plain data (msgspec Structs) so it can be validated once at the
API edge, stored in MongoDB, published to the KV bucket and decoded by every
service with the same types.  Attribute references everywhere are *paths* into the
event context (see ``libs.domain.paths``): ``body.customer.phone``,
``custom_variables.value``, ``headers.x-shop-id``, ``system.email``,
``subscriber.city``, ``formatter.<output>``.  Free text (messages, bodies,
URLs, headers, responses) is a Jinja2 template rendered in the sandbox
(``libs.domain.templating``) over the same context.

Which step fields are templates is said here, once, by each step type:
``TEMPLATES`` (rendered over the event context; a dict's values or a list's items
when the field is a dict or a list), ``PATHS`` (attribute paths, read as they are)
and ``LITERALS`` (everything else: ids, options, nested structures; never
rendered).  Validation, references and the executor all read these tuples, and
``walk`` is the one walk over the step tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import msgspec

from libs.domain.alerts import AlertConfig
from libs.domain.handshakes import Handshake
from libs.domain.verification import Verification

# ---------------------------------------------------------------- filters

FilterOp = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "greater_than",
    "less_than",
    "greater_or_equal",
    "less_or_equal",
    "exists",
    "not_exists",
    "is_empty",
    "is_not_empty",
    "in_list",
    "not_in_list",
    "regex",
]


class Condition(msgspec.Struct, forbid_unknown_fields=True):
    """One test on one attribute. ``value`` is a literal (not a template)."""

    attribute: str
    op: FilterOp
    value: Any = None
    case_sensitive: bool = False


class Group(msgspec.Struct, forbid_unknown_fields=True):
    """Conditions and nested groups combined with AND (``all``) or OR (``any``)."""

    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = msgspec.field(default_factory=list)
    groups: list[Group] = msgspec.field(default_factory=list)


# ---------------------------------------------------------------- steps


class FilterStep(msgspec.Struct, tag="filter", tag_field="type", forbid_unknown_fields=True):
    """Stops the branch it sits in when ``when`` is false."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ()
    PATHS: ClassVar[tuple[str, ...]] = ()
    LITERALS: ClassVar[tuple[str, ...]] = ("id", "when")

    id: str
    when: Group


class FormatterStep(msgspec.Struct, tag="formatter", tag_field="type", forbid_unknown_fields=True):
    """Computes ``formatter.<output>`` from ``input`` (a template) with ``op``.

    ``op`` names one formatter of ``libs.domain.formatters`` (e.g.
    ``date.format``, ``text.upper``, ``number.round``, ``lookup``); ``options``
    are that formatter's parameters.
    """

    TEMPLATES: ClassVar[tuple[str, ...]] = ("input",)
    PATHS: ClassVar[tuple[str, ...]] = ()
    LITERALS: ClassVar[tuple[str, ...]] = ("id", "output", "op", "options")

    id: str
    output: str
    op: str
    input: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class HttpStep(msgspec.Struct, tag="http", tag_field="type", forbid_unknown_fields=True):
    """An outbound HTTP request; its response becomes ``formatter.<id>.status/body``."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ("url", "headers", "body")
    PATHS: ClassVar[tuple[str, ...]] = ()
    LITERALS: ClassVar[tuple[str, ...]] = ("id", "method", "channel", "timeout_s")

    id: str
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: str = ""
    channel: str | None = None  # an HTTP channel (base URL, auth, allow_private)
    timeout_s: float = 10.0


class EmailStep(msgspec.Struct, tag="email", tag_field="type", forbid_unknown_fields=True):
    TEMPLATES: ClassVar[tuple[str, ...]] = ("to", "subject", "text", "html")
    PATHS: ClassVar[tuple[str, ...]] = ("channel_from",)
    LITERALS: ClassVar[tuple[str, ...]] = ("id", "channel")

    id: str
    to: str
    subject: str
    text: str = ""
    html: str = ""
    channel: str | None = None  # fixed SMTP channel id
    channel_from: str | None = None  # attribute path holding a channel id


class WhatsAppStep(msgspec.Struct, tag="whatsapp", tag_field="type", forbid_unknown_fields=True):
    TEMPLATES: ClassVar[tuple[str, ...]] = ("to", "text", "template_name", "template_params")
    PATHS: ClassVar[tuple[str, ...]] = ("channel_from",)
    LITERALS: ClassVar[tuple[str, ...]] = ("id", "template_language", "channel")

    id: str
    to: str
    text: str = ""
    template_name: str | None = None
    template_language: str = "en_US"
    template_params: list[str] = msgspec.field(default_factory=list)
    channel: str | None = None
    channel_from: str | None = None


class UpdateContactStep(
    msgspec.Struct, tag="update_contact", tag_field="type", forbid_unknown_fields=True
):
    """Sets fields of the event's contact: a system field or a subscriber attribute."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ("fields",)
    PATHS: ClassVar[tuple[str, ...]] = ()
    LITERALS: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    fields: dict[str, str] = msgspec.field(default_factory=dict)  # contact field -> template


class AssignOwnerStep(
    msgspec.Struct, tag="assign_owner", tag_field="type", forbid_unknown_fields=True
):
    """Makes an agent (by email) the owner of the event's contact."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ("agent_email",)
    PATHS: ClassVar[tuple[str, ...]] = ()
    LITERALS: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    agent_email: str  # template: static email or e.g. "{{ body.owner_email }}"


class BranchStep(msgspec.Struct, tag="branch", tag_field="type", forbid_unknown_fields=True):
    """A nested list of steps; a failed filter inside stops only this branch."""

    TEMPLATES: ClassVar[tuple[str, ...]] = ()
    PATHS: ClassVar[tuple[str, ...]] = ()
    LITERALS: ClassVar[tuple[str, ...]] = ("id", "steps")

    id: str
    steps: list[Step] = msgspec.field(default_factory=list)


Step = (
    FilterStep
    | FormatterStep
    | HttpStep
    | EmailStep
    | WhatsAppStep
    | UpdateContactStep
    | AssignOwnerStep
    | BranchStep
)

# ---------------------------------------------------------------- the rest


class ResponseConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Map Response (F3). ``body`` is a template; ``None`` answers the default JSON."""

    status: int = 200
    content_type: str = "application/json"
    body: str | None = None


class FieldMapping(msgspec.Struct, forbid_unknown_fields=True):
    """Field mapping (F6): contact fields from attributes (paths or templates).

    ``SOURCES`` are the single-valued fields that read the event (a path, or a
    template when the value contains ``{{`` or ``{%``); ``attributes`` maps
    subscriber attributes the same way.  ``channel`` and ``default_region`` are literal.
    """

    SOURCES: ClassVar[tuple[str, ...]] = ("mobile", "email", "name", "channel_from", "owner_from")

    mobile: str | None = None
    email: str | None = None
    name: str | None = None
    channel: str | None = None  # default channel id (static)
    channel_from: str | None = None  # attribute holding a channel id (dynamic)
    owner_from: str | None = None  # attribute holding an agent email (dynamic owner)
    default_region: str = "US"  # for numbers without a country code
    attributes: dict[str, str] = msgspec.field(default_factory=dict)


class ConnectorConfig(msgspec.Struct, forbid_unknown_fields=True):
    response: ResponseConfig = msgspec.field(default_factory=ResponseConfig)
    mapping: FieldMapping | None = None
    steps: list[Step] = msgspec.field(default_factory=list)
    idempotency_key: str | None = None  # attribute path whose value dedups re-sends
    max_body_bytes: int | None = None  # per-connector override of the global limit
    rate_limit_per_s: float | None = None
    # Source verification (F12): who may send.  Secrets are write-only in the API.
    verification: Verification | None = None
    allowed_ips: list[str] = msgspec.field(default_factory=list)  # CIDRs; empty: any
    handshake: Handshake | None = None
    # Days the event log keeps this connector's entries (HOOKLINE_LOG_RETENTION_DAYS
    # when unset); applies to entries received after the change.
    retention_days: Annotated[float, msgspec.Meta(gt=0, le=3650)] | None = None
    alerts: AlertConfig | None = None  # notify the operator of failures (F14)


class ConnectorSnapshot(msgspec.Struct, kw_only=True):
    """What the config service publishes to the KV bucket for the other services."""

    id: str
    name: str
    token: str
    version: int
    config: ConnectorConfig
    # A rotated token keeps working until this instant (grace period), if set.
    previous_token: str | None = None
    previous_token_until: float | None = None  # unix seconds
    deleted: bool = False
    paused: bool = False  # steps wait (the executor holds the events) until resumed


class StepAt(NamedTuple):
    """One step of the tree and where it sits: ``where`` is its JSON path
    (``$.steps[1].steps[0]``), ``branch`` the path of the list that holds it
    (``$.steps[1].steps``)."""

    where: str
    step: Step
    branch: str


def walk(steps: list[Step], at: str = "$.steps") -> Iterator[StepAt]:
    """The walk over the step tree: every step in run order (depth first, a branch
    before the steps inside it), with its place.  Validation, references, listings and
    the executor all walk with this."""
    for i, step in enumerate(steps):
        where = f"{at}[{i}]"
        yield StepAt(where, step, at)
        if isinstance(step, BranchStep):
            yield from walk(step.steps, f"{where}.steps")


def iter_steps(steps: list[Step]) -> list[Step]:
    """Every step, depth first, branches included (for validation and listings)."""
    return [at.step for at in walk(steps)]


class Source(NamedTuple):
    """One value of a step that reads the event: ``field`` names it (``url``,
    ``headers.X-Shop``, ``template_params[0]``), ``text`` is a template when
    ``template``, else an attribute path."""

    field: str
    text: str
    template: bool


def sources(step: Step) -> Iterator[Source]:
    """Every template and attribute path of a step, in field order (unset ones left out)."""
    for name in step.__struct_fields__:
        value = getattr(step, name)
        if name in step.PATHS:
            if isinstance(value, str) and value:
                yield Source(name, value, False)
        elif name not in step.TEMPLATES:
            continue
        elif isinstance(value, str):
            yield Source(name, value, True)
        elif isinstance(value, dict):
            for key, item in value.items():
                yield Source(f"{name}.{key}", item, True)
        elif isinstance(value, list):
            for k, item in enumerate(value):
                yield Source(f"{name}[{k}]", item, True)
