"""The OpenAPI 3.1 description of the config API, served (public) at ``GET /openapi.json``.

One declarative table, :data:`OPERATIONS`, lists every route of the config service
with its parameters, request body and responses.  The configuration model's schemas
come from the msgspec Structs themselves (``msgspec.json.schema_components``), so
the documented configuration format is the one the API decodes; the small shapes
that have no Struct (views, listings, request bodies) are written by hand in
:data:`HAND_WRITTEN`.  A test compares the table with the routes the app registers,
so the spec cannot drift from the code.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events
from libs.domain.channels import SECRET_FIELDS, Channel, HttpChannel, SmtpChannel, WhatsAppChannel
from libs.domain.connector import ConnectorConfig
from libs.domain.structure import Field

routes = web.RouteTableDef()

Schema = dict[str, Any]
API_VERSION = "1.0.0"
REF = "#/components/schemas/{name}"


def ref(name: str) -> Schema:
    return {"$ref": REF.format(name=name)}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
# Versions are stored as MongoDB int64: larger numbers are not versions.
VERSION: Schema = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
TIME: Schema = {"type": "string", "format": "date-time"}
ANY: Schema = {}


def obj(required: tuple[str, ...] = (), closed: bool = False, **properties: Schema) -> Schema:
    out: Schema = {"type": "object", "properties": properties, "required": list(required)}
    if closed:
        out["additionalProperties"] = False
    return out


def items_of(schema: Schema, max_items: int | None = None) -> Schema:
    array: Schema = {"type": "array", "items": schema}
    if max_items is not None:
        array["maxItems"] = max_items
    return obj(("items",), items=array)


# ======================================================================== schemas

# Names the same rules as the handlers (services.config.crm_api) use.
ATTRIBUTE_NAME = "^[a-z][a-z0-9_]{0,63}$"
CHANNEL_ID = "^[A-Za-z0-9_-]{1,64}$"
EVENT_STATUSES = ["received", "succeeded", "failed"]  # what ?status= accepts

PROBLEM = obj(
    ("path", "message"),
    path={"type": "string", "description": "JSON path of the problem, e.g. $.steps[0].when"},
    message=STRING,
)

HAND_WRITTEN: dict[str, Schema] = {
    "Error": obj(
        ("error",),
        error={
            "type": "object",
            "description": "Every error of every Hookline API. Some errors carry more "
            "members: `problems` (422: every problem with its JSON path), "
            "`latest_version` (409 on a stale save), `connectors` (409 on deleting a "
            "channel in use).",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable, snake_case"},
                "message": {"type": "string", "description": "for humans"},
                "problems": {"type": "array", "items": ref("Problem")},
                "latest_version": nullable(INTEGER),
                "connectors": {
                    "type": "array",
                    "items": obj(("id", "name"), id=STRING, name=STRING),
                },
            },
        },
    ),
    "Problem": PROBLEM,
    # ------------------------------------------------------------ connectors
    "Connector": obj(
        ("id", "name", "url", "version", "config", "created_at", "updated_at"),
        id=STRING,
        name=STRING,
        url={
            "type": "string",
            "format": "uri",
            "description": "The secret connecting URL (`<HOOKLINE_PUBLIC_URL>/c/<token>`).",
        },
        version={"type": "integer", "minimum": 1},
        config=ref("ConnectorConfig"),
        created_at=TIME,
        updated_at=TIME,
    ),
    "ConnectorList": items_of(ref("Connector")),
    "ConnectorCreate": obj(
        ("name",),
        name={"type": "string", "minLength": 1, "maxLength": 200},
        config=ref("ConnectorConfig"),
    ),
    "ConnectorSave": obj(
        ("version",),
        version={
            **VERSION,
            "description": "The version this save is based on; 409 if it is not the latest.",
        },
        name={"type": "string", "minLength": 1, "maxLength": 200},
        config=ref("ConnectorConfig"),
    ),
    "RotateUrl": obj(
        grace_seconds={
            "type": "integer",
            "minimum": 0,
            "maximum": 7 * 86400,
            "default": 0,
            "description": "How long the old URL keeps working (0: it dies at once).",
        }
    ),
    "Version": obj(
        ("version", "saved_at", "config"),
        version=INTEGER,
        saved_at=TIME,
        config=ref("ConnectorConfig"),
    ),
    "VersionList": items_of(ref("Version"), max_items=20),
    # ------------------------------------------------------------ structure, attributes
    "Structure": obj(
        ("sample", "schema", "fields", "truncated", "from_event", "updated_at"),
        sample={"description": "The code view: the event JSON the structure came from."},
        schema={"type": "object", "description": "JSON Schema (draft 2020-12) of the event."},
        fields={"type": "array", "items": ref("Field"), "description": "The design view."},
        truncated={"type": "boolean", "description": "A size bound cut the structure."},
        from_event=nullable(STRING),
        updated_at=nullable(TIME),
        warnings={
            "type": "array",
            "description": "After a replacement: every mapping/step reference into the "
            "event that the new structure lacks.",
            "items": obj(
                ("path", "attribute", "message"), path=STRING, attribute=STRING, message=STRING
            ),
        },
    ),
    "StructureReplace": obj(
        ("sample",),
        sample={
            "description": 'The event JSON: {"body": ..., "custom_variables": {...}}.',
        },
    ),
    "Attribute": obj(
        ("path", "type"),
        path={"type": "string", "description": "What templates and filters refer to."},
        type=STRING,
        example=ANY,
        label=STRING,
        step_id=STRING,
        op=STRING,
    ),
    "ConnectorAttributes": obj(
        ("event", "system", "subscriber", "formatter"),
        event={"type": "array", "items": ref("Attribute")},
        system={"type": "array", "items": ref("Attribute")},
        subscriber={"type": "array", "items": ref("Attribute")},
        formatter={"type": "array", "items": ref("Attribute")},
    ),
    # ------------------------------------------------------------ events, stats
    "EventSummary": obj(
        ("event_id", "received_at", "status"),
        event_id=STRING,
        received_at=nullable(TIME),
        status=nullable({"type": "string", "enum": ["received", "succeeded", "failed"]}),
        connector_version=nullable(INTEGER),
        error=nullable(STRING),
    ),
    "EventList": obj(
        ("items", "next_before"),
        items={"type": "array", "items": ref("EventSummary")},
        next_before={
            **nullable(STRING),
            "description": "A cursor (`<received_at>,<event_id>`): pass it as ?before= for "
            "the next (older) page; null on the last page.",
        },
    ),
    "EventDetail": {
        "allOf": [
            ref("EventSummary"),
            obj(
                ("request", "event", "mapping", "execution"),
                request=nullable(ref("Request")),
                event=obj(("body", "custom_variables"), body=ANY, custom_variables=ANY),
                mapping=nullable(ref("MappingResult")),
                drift=nullable(ref("DriftReport")),
                execution={
                    "type": "array",
                    "items": ref("StepLog"),
                    "description": "One entry per step that ran or was skipped.",
                },
                attempts=nullable(INTEGER),
                replay_of=nullable(STRING),
                outcome_at=nullable(TIME),
            ),
        ]
    },
    "Replay": obj(version={**VERSION, "description": "A kept version (default: the current)."}),
    "ReplayAccepted": obj(
        ("event_id", "replay_of", "version"), event_id=STRING, replay_of=STRING, version=INTEGER
    ),
    "DryRun": obj(
        version={**VERSION, "description": "A kept version (default: the current)."},
        config=ref("ConnectorConfig"),
    ),
    "DryRunResult": obj(
        ("event_id", "version", "status", "execution", "dry_run"),
        event_id=STRING,
        version=INTEGER,
        status=STRING,
        error=nullable(STRING),
        execution={"type": "array", "items": ref("StepLog")},
        dry_run={"const": True},
    ),
    "Stats": obj(
        ("received", "succeeded", "failed", "duplicates", "rejected", "since"),
        received={"type": "integer", "minimum": 0},
        succeeded={"type": "integer", "minimum": 0},
        failed={"type": "integer", "minimum": 0},
        duplicates={"type": "integer", "minimum": 0},
        rejected={"type": "integer", "minimum": 0},
        since={**TIME, "description": "Counting started then: creation or the last reset."},
    ),
    # ------------------------------------------------------------ CRM objects
    "Contact": obj(
        ("id", "attributes"),
        id=STRING,
        name=nullable(STRING),
        email=nullable(STRING),
        mobile={**nullable(STRING), "description": "E.164"},
        time_zone=nullable(STRING),
        attributes={"type": "object", "description": "Subscriber attributes by name."},
        owner=nullable(STRING),
        channel=nullable(STRING),
        created_at=nullable(TIME),
        updated_at=nullable(TIME),
    ),
    "ContactList": items_of(ref("Contact")),
    "SubscriberAttribute": obj(
        ("name", "type", "description"),
        name=STRING,
        type={"enum": ["text", "number", "date", "boolean"]},
        description=STRING,
        created_at=nullable(TIME),
    ),
    "SubscriberAttributeList": items_of(ref("SubscriberAttribute")),
    "SubscriberAttributeCreate": obj(
        ("name", "type"),
        closed=True,
        name={"type": "string", "pattern": ATTRIBUTE_NAME},
        type={"enum": ["text", "number", "date", "boolean"]},
        description={"type": "string", "maxLength": 1000},
    ),
    "ChannelList": items_of(ref("Channel")),
    "Agent": obj(("email", "name"), email=STRING, name=STRING, created_at=nullable(TIME)),
    "AgentList": items_of(ref("Agent")),
    "AgentCreate": obj(
        ("email",),
        closed=True,
        email={"type": "string", "format": "email", "maxLength": 254},
        name={"type": "string", "maxLength": 200},
    ),
    # ------------------------------------------------------------ ops
    "Health": obj(("status",), status={"const": "ok"}),
    "Ready": obj(("ready",), ready={"type": "boolean"}),
}


def _channel_union(suffix: str, description: str = "") -> Schema:
    """``WhatsAppChannel<suffix> | SmtpChannel<suffix> | HttpChannel<suffix>`` by ``type``."""
    structs = (WhatsAppChannel, SmtpChannel, HttpChannel)
    union: Schema = {
        "anyOf": [ref(f"{s.__name__}{suffix}") for s in structs],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                str(s.__struct_config__.tag): REF.format(name=f"{s.__name__}{suffix}")
                for s in structs
            },
        },
    }
    if description:
        union["description"] = description
    return union


def _request_channels(components: dict[str, Schema]) -> dict[str, Schema]:
    """Create/replace bodies derived from the channel Structs' schemas (no drift)."""
    out: dict[str, Schema] = {}
    for struct in (WhatsAppChannel, SmtpChannel, HttpChannel):
        base = components[struct.__name__]
        create = copy.deepcopy(base)
        create["required"] = [r for r in base["required"] if r != "id"]
        create["properties"]["id"] = {
            "type": "string",
            "pattern": CHANNEL_ID,
            "description": "Unique; generated (ch_…) when omitted.",
        }
        create["title"] = f"{struct.__name__}Create"
        out[f"{struct.__name__}Create"] = create
        replace = copy.deepcopy(create)
        replace["required"] = [r for r in create["required"] if r not in SECRET_FIELDS]
        replace["title"] = f"{struct.__name__}Replace"
        replace["description"] = (
            "The whole channel. Secrets omitted, or sent back redacted as GET showed "
            "them ('…' + last 4), keep their stored value; `id` and `type` cannot change."
        )
        out[f"{struct.__name__}Replace"] = replace
    out["ChannelCreate"] = _channel_union("Create")
    out["ChannelReplace"] = _channel_union("Replace")
    return out


# ======================================================================== operations


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Op:
    """One route: ``ok`` is its success status, ``response`` that body's schema."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    ok: int = 200
    response: Schema | None = None
    body: Schema | None = None
    body_required: bool = True
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # besides 401 (all of /api/v1), 400/413/415 (with a body)
    public: bool = False
    description: str = ""
    extra_responses: dict[int, tuple[str, Schema]] = field(default_factory=dict)
    media_type: str = "application/json"


PATH_PARAMS: dict[str, Param] = {
    "id": Param("id", STRING, "The object's id.", "path", True),
    "event_id": Param("event_id", STRING, "An event id of this connector's log.", "path", True),
    "n": Param("n", VERSION, "A kept version number.", "path", True),
    "name": Param("name", STRING, "A subscriber attribute's name.", "path", True),
    "email": Param("email", STRING, "An agent's email (any case).", "path", True),
}

C = "/api/v1/connectors"
CID = C + "/{id}"
EV = CID + "/events/{event_id}"
BODY_ERRORS = (400, 413, 415)

OPERATIONS: tuple[Op, ...] = (
    # ---------------------------------------------------------------- connectors
    Op("POST", C, "createConnector", "Create a connector", "connectors", 201,
       ref("Connector"), ref("ConnectorCreate"), errors=(422,),
       description="Without `config`, the default configuration (answer 200 JSON, no "
       "mapping, no steps). 422 lists every problem of an invalid configuration."),
    Op("GET", C, "listConnectors", "List connectors", "connectors",
       response=ref("ConnectorList")),
    Op("GET", CID, "getConnector", "Read a connector", "connectors",
       response=ref("Connector"), errors=(404,)),
    Op("PUT", CID, "saveConnector", "Save the whole configuration (a new version)",
       "connectors", response=ref("Connector"), body=ref("ConnectorSave"),
       errors=(404, 409, 422),
       description="Optimistic: `version` must be the latest (409 otherwise, nothing "
       "changes). 422 lists every problem with its JSON path."),
    Op("DELETE", CID, "deleteConnector", "Delete a connector", "connectors", 204,
       errors=(404,)),
    Op("POST", CID + "/rotate-url", "rotateUrl", "Generate a new connecting URL",
       "connectors", response=ref("Connector"), body=ref("RotateUrl"),
       body_required=False, errors=(404, 422),
       description="The old URL dies at once, or after `grace_seconds`."),
    Op("GET", CID + "/versions", "listVersions", "The kept versions, newest first",
       "connectors", response=ref("VersionList"), errors=(404,)),
    Op("POST", CID + "/versions/{n}/restore", "restoreVersion",
       "Restore a kept version (as a new version)", "connectors",
       response=ref("Connector"), errors=(400, 404, 409)),
    # ---------------------------------------------------------------- structure
    Op("GET", CID + "/structure", "getStructure", "The learned structure", "structure",
       response=ref("Structure"), errors=(404,),
       description="404 `no_structure` until the first event is received."),
    Op("PUT", CID + "/structure", "replaceStructure", "Replace the code view by hand",
       "structure", response=ref("Structure"), body=ref("StructureReplace"),
       errors=(404, 422)),
    Op("POST", CID + "/structure/from-event/{event_id}", "remapFromEvent",
       "Remap the structure from a logged event", "structure",
       response=ref("Structure"), errors=(404, 422),
       description="`warnings` name every reference that no longer resolves."),
    Op("GET", CID + "/attributes", "listConnectorAttributes",
       "Every attribute available to this connector, by kind", "structure",
       response=ref("ConnectorAttributes"), errors=(404,)),
    # ---------------------------------------------------------------- events, stats
    Op("GET", CID + "/events", "listEvents", "The event log, newest first", "events",
       response=ref("EventList"), errors=(400, 404),
       query=(
           Param("status", {"type": "string", "enum": EVENT_STATUSES}, "Only this status."),
           Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
           Param("before", STRING, "An ISO 8601 time: only events received before it; "
                 "or a page's `next_before` cursor."),
       )),
    Op("GET", EV, "getEvent", "One logged event with its execution log", "events",
       response=ref("EventDetail"), errors=(404,)),
    Op("POST", EV + "/replay", "replayEvent", "Run a logged event again", "events", 202,
       ref("ReplayAccepted"), ref("Replay"), body_required=False, errors=(404, 422),
       description="A new event (`replay_of` links it) through the whole pipeline, "
       "against the current or a chosen kept version."),
    Op("POST", EV + "/dry-run", "dryRunEvent",
       "Run a logged event through a configuration without side effects", "events",
       response=ref("DryRunResult"), body=ref("DryRun"), body_required=False,
       errors=(404, 422),
       extra_responses={503: ("No executor answered", ref("Error"))},
       description="Every step is evaluated; actions are rendered, not sent."),
    Op("GET", CID + "/stats", "getStats", "Counters since creation or the last reset",
       "stats", response=ref("Stats"), errors=(404,)),
    Op("POST", CID + "/stats/reset", "resetStats", "Start counting again", "stats",
       response=ref("Stats"), errors=(404,)),
    # ---------------------------------------------------------------- CRM
    Op("GET", "/api/v1/contacts", "searchContacts", "Find contacts by mobile and/or email",
       "crm", response=ref("ContactList"), errors=(400,),
       query=(
           Param("mobile", STRING, "Any format; normalised to E.164 (default region US)."),
           Param("email", STRING, "Compared case-insensitively."),
           Param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
       ),
       description="At least one of `mobile` and `email` (400 otherwise); first added first."),
    Op("GET", "/api/v1/contacts/{id}", "getContact", "Read a contact", "crm",
       response=ref("Contact"), errors=(404,)),
    Op("GET", "/api/v1/attributes", "listSubscriberAttributes",
       "Subscriber attribute definitions", "crm", response=ref("SubscriberAttributeList")),
    Op("POST", "/api/v1/attributes", "createSubscriberAttribute",
       "Define a subscriber attribute", "crm", 201, ref("SubscriberAttribute"),
       ref("SubscriberAttributeCreate"), errors=(409, 422)),
    Op("GET", "/api/v1/attributes/{name}", "getSubscriberAttribute",
       "Read a subscriber attribute", "crm", response=ref("SubscriberAttribute"),
       errors=(404,)),
    Op("DELETE", "/api/v1/attributes/{name}", "deleteSubscriberAttribute",
       "Delete a subscriber attribute", "crm", 204, errors=(404,)),
    Op("GET", "/api/v1/channels", "listChannels", "Channels (secrets redacted)", "crm",
       response=ref("ChannelList")),
    Op("POST", "/api/v1/channels", "createChannel", "Add a channel", "crm", 201,
       ref("Channel"), ref("ChannelCreate"), errors=(409, 422)),
    Op("GET", "/api/v1/channels/{id}", "getChannel", "Read a channel (secrets redacted)",
       "crm", response=ref("Channel"), errors=(404,)),
    Op("PUT", "/api/v1/channels/{id}", "replaceChannel", "Replace a channel", "crm",
       response=ref("Channel"), body=ref("ChannelReplace"), errors=(404, 422)),
    Op("DELETE", "/api/v1/channels/{id}", "deleteChannel", "Delete a channel", "crm", 204,
       errors=(404, 409),
       description="409 `channel_in_use` names the connectors whose configuration uses it."),
    Op("GET", "/api/v1/agents", "listAgents", "Agents (contact owners)", "crm",
       response=ref("AgentList")),
    Op("POST", "/api/v1/agents", "createAgent", "Add an agent", "crm", 201, ref("Agent"),
       ref("AgentCreate"), errors=(409, 422)),
    Op("GET", "/api/v1/agents/{email}", "getAgent", "Read an agent", "crm",
       response=ref("Agent"), errors=(404,)),
    Op("DELETE", "/api/v1/agents/{email}", "deleteAgent", "Delete an agent", "crm", 204,
       errors=(404,)),
    # ---------------------------------------------------------------- ops (public)
    Op("GET", "/openapi.json", "getOpenApi", "This document", "ops",
       response={"type": "object"}, public=True),
    Op("GET", "/healthz", "healthz", "The process is alive", "ops",
       response=ref("Health"), public=True),
    Op("GET", "/readyz", "readyz", "NATS and MongoDB connections are up", "ops",
       response=ref("Ready"), public=True,
       extra_responses={503: ("Not ready", ref("Ready"))}),
    Op("GET", "/metrics", "metrics", "Prometheus metrics", "ops",
       response={"type": "string"}, public=True, media_type="text/plain"),
)  # fmt: skip

# OpenAPI links: where the path values of other operations come from (for clients, and
# for schemathesis' stateful phase).  A source links to every operation of its collection
# (``/api/v1/<collection>``) whose path parameters are exactly the ones given here.
LINKS: tuple[tuple[str, dict[str, str]], ...] = (
    ("createConnector", {"id": "$response.body#/id"}),
    ("listVersions", {"id": "$request.path.id", "n": "$response.body#/items/0/version"}),
    ("listEvents", {"id": "$request.path.id", "event_id": "$response.body#/items/0/event_id"}),
    ("searchContacts", {"id": "$response.body#/items/0/id"}),
    ("createSubscriberAttribute", {"name": "$response.body#/name"}),
    ("createChannel", {"id": "$response.body#/id"}),
    ("createAgent", {"email": "$response.body#/email"}),
)

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad request (malformed body, query or path value)",
    401: "Missing or wrong admin token",
    404: "Not found",
    409: "Conflict",
    413: "The body is larger than 4 MiB",
    415: "The body is not application/json",
    422: "Invalid: `problems` lists every problem with its JSON path",
}


def _error(status: int) -> Schema:
    return {
        "description": STATUS_TEXT[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def collection(path: str) -> str:
    """``/api/v1/<collection>`` of a path."""
    return "/".join(path.split("/")[:4])


def _links(op: Op) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for source, parameters in LINKS:
        if source != op.operation_id:
            continue
        for target in OPERATIONS:
            if collection(target.path) == collection(op.path) and set(
                _path_names(target.path)
            ) == set(parameters):
                out[target.operation_id] = {
                    "operationId": target.operation_id,
                    "parameters": parameters,
                }
    return out


def _operation(op: Op) -> Schema:
    names = _path_names(op.path)
    params = [PATH_PARAMS[n] for n in names] + list(op.query)
    out: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in params
        ],
    }
    if op.description:
        out["description"] = op.description
    ok: Schema = {"description": STATUS_TEXT[op.ok]}
    if op.response is not None:
        ok["content"] = {op.media_type: {"schema": op.response}}
    links = _links(op)
    if links:
        ok["links"] = links
    responses: dict[str, Schema] = {str(op.ok): ok}
    errors = set(op.errors)
    if op.body is not None:
        errors |= set(BODY_ERRORS)
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": op.body}},
        }
    if not op.public:
        errors.add(401)
    for status in sorted(errors):
        responses[str(status)] = _error(status)
    for status, (text, schema) in op.extra_responses.items():
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": schema}},
        }
    out["responses"] = dict(sorted(responses.items()))
    out["security"] = [] if op.public else [{"bearer": []}]
    return out


def _components() -> dict[str, Schema]:
    _, generated = msgspec.json.schema_components(
        [
            ConnectorConfig,
            Channel,
            Field,
            events.StepLog,
            events.Request,
            events.MappingResult,
            events.DriftReport,
        ],
        ref_template=REF,
    )
    generated["Channel"] = _channel_union(
        "",
        "A channel as the API shows it: secrets (`access_token`, `password`) redacted to "
        "'…' + their last 4 characters, HTTP header values to '…'.",
    )
    clash = set(generated) & set(HAND_WRITTEN)
    assert not clash, f"component names defined twice: {clash}"
    return dict(sorted({**generated, **HAND_WRITTEN, **_request_channels(generated)}.items()))


@cache
def spec() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (built once)."""
    paths: dict[str, dict[str, Schema]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline config API",
            "version": API_VERSION,
            "description": "Configure webhook connectors, read their event log and stats, "
            "and manage the CRM's attributes, channels, agents and contacts. Every "
            "`/api/v1` operation needs `Authorization: Bearer <admin token>`; every error "
            'is `{"error": {"code": ..., "message": ...}}`.',
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": [
            {"name": "connectors", "description": "Connectors, URLs and versions (F1, F11)"},
            {"name": "structure", "description": "JSON structure and attributes (F4, F5)"},
            {"name": "events", "description": "The event log and replays (F9)"},
            {"name": "stats", "description": "Per-connector counters (F10)"},
            {"name": "crm", "description": "Contacts, attributes, channels, agents (F6, F8)"},
            {"name": "ops", "description": "Health, readiness, metrics, this document"},
        ],
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (HOOKLINE_ADMIN_TOKEN, or the "
                    "`admin-token` file in the data dir).",
                }
            },
        },
    }


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of an OpenAPI document."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


@cache
def _body() -> bytes:
    return json.dumps(spec(), ensure_ascii=False).encode()


@routes.get("/openapi.json")
async def openapi_json(_: web.Request) -> web.Response:
    return web.Response(body=_body(), content_type="application/json", charset="utf-8")
