"""The connector configuration: the one document an operator saves and versions.

Everything here is plain data (msgspec Structs) so it can be validated once at the
API edge, stored in MongoDB, published to the KV bucket and decoded by every
service with the same types.  Attribute references everywhere are *paths* into the
event context (see ``libs.domain.paths``): ``body.customer.phone``,
``custom_variables.value``, ``headers.x-shop-id``, ``system.email``,
``subscriber.city``, ``formatter.<output>``.  Free text (messages, bodies,
URLs, headers, responses) is a Jinja2 template rendered in the sandbox
(``libs.domain.templating``) over the same context.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

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

    id: str
    when: Group


class FormatterStep(msgspec.Struct, tag="formatter", tag_field="type", forbid_unknown_fields=True):
    """Computes ``formatter.<output>`` from ``input`` (a template) with ``op``.

    ``op`` names one formatter of ``libs.domain.formatters`` (e.g.
    ``date.format``, ``text.upper``, ``number.round``, ``lookup``); ``options``
    are that formatter's parameters.
    """

    id: str
    output: str
    op: str
    input: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class HttpStep(msgspec.Struct, tag="http", tag_field="type", forbid_unknown_fields=True):
    """An outbound HTTP request; its response becomes ``formatter.<id>.status/body``."""

    id: str
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: str = ""
    channel: str | None = None  # an HTTP channel (base URL, auth, allow_private)
    timeout_s: float = 10.0


class EmailStep(msgspec.Struct, tag="email", tag_field="type", forbid_unknown_fields=True):
    id: str
    to: str
    subject: str
    text: str = ""
    html: str = ""
    channel: str | None = None  # fixed SMTP channel id
    channel_from: str | None = None  # attribute path holding a channel id


class WhatsAppStep(msgspec.Struct, tag="whatsapp", tag_field="type", forbid_unknown_fields=True):
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
    id: str
    fields: dict[str, str] = msgspec.field(default_factory=dict)  # contact field -> template


class AssignOwnerStep(
    msgspec.Struct, tag="assign_owner", tag_field="type", forbid_unknown_fields=True
):
    id: str
    agent_email: str  # template: static email or e.g. "{{ body.owner_email }}"


class BranchStep(msgspec.Struct, tag="branch", tag_field="type", forbid_unknown_fields=True):
    """A nested list of steps; a failed filter inside stops only this branch."""

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
    """Field mapping (F6): contact fields from attributes (paths or templates)."""

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


def iter_steps(steps: list[Step]) -> list[Step]:
    """Every step, depth first, branches included (for validation and listings)."""
    out: list[Step] = []
    for step in steps:
        out.append(step)
        if isinstance(step, BranchStep):
            out.extend(iter_steps(step.steps))
    return out
