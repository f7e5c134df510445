"""Typed routes, and the OpenAPI 3.1 description of the config API generated from them.

Each API module declares its routes with :class:`Routes`::

    routes = Routes()

    @routes.operation("PUT", "/api/v1/connectors/{id}", "saveConnector", "Save ...",
                      tag="connectors", body=models.ConnectorSave, returns=models.Connector,
                      errors=(404, 409, 422), invalid="invalid_config")
    async def save(request: web.Request, body: models.ConnectorSave) -> models.Connector: ...

which registers an aiohttp route (``app.add_routes(module.routes)`` as for any
``RouteTableDef``) whose handler decodes the body (and query) into the models, with the
API's 4xx for what does not decode (:func:`services.config.decoding.decode`), calls the
function and encodes what it returns; and it records the route's :class:`Operation`.

:func:`spec` walks an application's route table: every route's operation, with schemas
from ``msgspec.json.schema_components`` over the models; the routes that
``libs.infra.metrics`` adds are described by :data:`OPS`.  No schema is written here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events
from services.config import decoding, models
from services.config.context import body_json

Schema = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_VERSION = "1.0.0"
REF = "#/components/schemas/{name}"
BODY_ERRORS = (400, 413, 415)  # with a body: malformed, too large, not JSON


@dataclass(frozen=True)
class Operation:
    """One route: ``status`` is its success status; ``body``, ``query`` and ``returns``
    are types (msgspec Structs, or unions of them) the spec's schemas come from."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    status: int = 200
    returns: Any = None
    body: Any = None
    body_required: bool = True
    query: type[msgspec.Struct] | None = None
    errors: tuple[int, ...] = ()  # besides 401 (all of /api/v1), 400/413/415 (with a body)
    public: bool = False
    description: str = ""
    invalid: str = "invalid_body"  # the 422 code of a body that does not decode
    # The handler gets the JSON object as sent and decodes it into ``body`` itself (when
    # how depends on what is stored); the spec documents ``body`` all the same.
    raw_body: bool = False
    extra_responses: tuple[tuple[int, str, Any], ...] = ()
    media_type: str = "application/json"


# The handlers Routes made, with their operations (read by spec()).
OPERATION_OF: dict[Callable[..., Any], Operation] = {}


class Routes(web.RouteTableDef):
    """A ``RouteTableDef`` whose routes are typed operations."""

    def operation(
        self, method: str, path: str, operation_id: str, summary: str, **options: Any
    ) -> Callable[[Callable[..., Awaitable[Any]]], Handler]:
        # The spec names a path parameter as OpenAPI does: "{file}", not aiohttp's
        # "{file:.+}" (a parameter that may hold slashes).
        op = Operation(method, re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path), operation_id, summary,
                       **options)  # fmt: skip

        def register(fn: Callable[..., Awaitable[Any]]) -> Handler:
            async def handler(request: web.Request) -> web.StreamResponse:
                kwargs: dict[str, Any] = {}
                if op.query is not None:
                    query = {k: v for k, v in request.query.items() if v}
                    kwargs["query"] = decoding.decode(
                        op.query, query, "invalid_query", status=400, strict=False
                    )
                if op.body is not None:
                    raw = await body_json(request, optional=not op.body_required)
                    kwargs["body"] = (
                        raw if op.raw_body else decoding.decode(op.body, raw, op.invalid)
                    )
                result = await fn(request, **kwargs)
                if isinstance(result, web.StreamResponse):
                    return result
                if result is None:
                    return web.Response(status=op.status)
                return web.json_response(msgspec.to_builtins(result), status=op.status)

            handler.__name__ = fn.__name__
            handler.__doc__ = fn.__doc__
            OPERATION_OF[handler] = op
            self.route(method, path)(handler)
            return handler

        return register


routes = Routes()

# ======================================================================== the spec

# Routes libs.infra.metrics.add_ops_routes adds to every service.
OPS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation(
        "GET", "/healthz", "healthz", "The process is alive", "ops",
        returns=models.Health, public=True,
    ),
    ("GET", "/readyz"): Operation(
        "GET", "/readyz", "readyz", "NATS and MongoDB connections are up", "ops",
        returns=models.Ready, public=True,
        extra_responses=((503, "Not ready", models.Ready),),
    ),
    ("GET", "/metrics"): Operation(
        "GET", "/metrics", "metrics", "Prometheus metrics", "ops",
        returns=str, public=True, media_type="text/plain",
    ),
}  # fmt: skip

# Path parameters: (type, description); a type's schema is msgspec's.
PATH_PARAMS: dict[str, tuple[Any, str]] = {
    "id": (str, "The object's id."),
    "event_id": (str, "An event id of this connector's log."),
    "n": (models.VersionNumber, "A kept version number."),
    "name": (str, "A subscriber attribute's name."),
    "email": (str, "An agent's email (any case)."),
    "file": (str, "A file of the console (js/app.js, app.css, …)."),
}

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
    302: "Found: redirects (Location)",
    400: "Bad request (malformed body, query or path value)",
    401: "Missing or wrong admin token",
    404: "Not found",
    409: "Conflict",
    413: "The body is larger than 4 MiB",
    415: "The body is not application/json",
    422: "Invalid: `problems` lists every problem with its JSON path",
}

# Documented beside the operations' own types: what the event log's entries carry.
DOCUMENTED = (models.Error, events.Request, events.MappingResult, events.DriftReport)


def operations_of(app: web.Application) -> list[Operation]:
    """The operation of every route of ``app`` (HEAD and undocumented routes left out)."""
    out: dict[tuple[str, str], Operation] = {}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        key = (route.method, route.resource.canonical)
        op = OPERATION_OF.get(route.handler) or OPS.get(key)
        if op is not None:
            out[key] = op
    return list(out.values())


def _types(ops: Iterable[Operation]) -> list[Any]:
    kinds: list[Any] = list(DOCUMENTED)
    for op in ops:
        kinds += [k for k in (op.returns, op.body, op.query) if k is not None]
        kinds += [kind for _, _, kind in op.extra_responses]
    kinds += [kind for kind, _ in PATH_PARAMS.values()]
    return kinds


def _schemas(kinds: tuple[Any, ...]) -> tuple[dict[Any, Schema], dict[str, Schema]]:
    schemas, components = msgspec.json.schema_components(kinds, ref_template=REF)
    return {_key(k): s for k, s in zip(kinds, schemas, strict=True)}, components


def _key(kind: Any) -> Any:
    return repr(kind)  # unions and Annotated types compare by value, some not hashably


def _error(status: int, schema_of: Callable[[Any], Schema]) -> Schema:
    return {
        "description": STATUS_TEXT[status],
        "content": {"application/json": {"schema": schema_of(models.Error)}},
    }


def _path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def collection(path: str) -> str:
    """``/api/v1/<collection>`` of a path."""
    return "/".join(path.split("/")[:4])


def _links(op: Operation, ops: list[Operation]) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for source, parameters in LINKS:
        if source != op.operation_id:
            continue
        for target in ops:
            if collection(target.path) == collection(op.path) and set(
                _path_names(target.path)
            ) == set(parameters):
                out[target.operation_id] = {
                    "operationId": target.operation_id,
                    "parameters": parameters,
                }
    return out


def _query_parameters(query: type[msgspec.Struct], components: dict[str, Schema]) -> list[Schema]:
    struct = components[query.__name__]
    out = []
    for name, schema in struct["properties"].items():
        schema = dict(schema)
        description = schema.pop("description", "")
        out.append(
            {
                "name": name,
                "in": "query",
                "required": name in struct.get("required", ()),
                "schema": schema,
                **({"description": description} if description else {}),
            }
        )
    return out


def _operation(
    op: Operation,
    ops: list[Operation],
    schema_of: Callable[[Any], Schema],
    components: dict[str, Schema],
) -> Schema:
    parameters: list[Schema] = []
    for name in _path_names(op.path):
        kind, description = PATH_PARAMS[name]
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema_of(kind),
                "description": description,
            }
        )
    if op.query is not None:
        parameters += _query_parameters(op.query, components)
    out: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
    }
    if op.description:
        out["description"] = op.description
    ok: Schema = {"description": STATUS_TEXT[op.status]}
    if op.returns is not None:
        ok["content"] = {op.media_type: {"schema": schema_of(op.returns)}}
    links = _links(op, ops)
    if links:
        ok["links"] = links
    responses: dict[str, Schema] = {str(op.status): ok}
    errors = set(op.errors)
    if op.body is not None:
        errors |= set(BODY_ERRORS)
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema_of(op.body)}},
        }
    if not op.public:
        errors.add(401)
    for status in sorted(errors):
        responses[str(status)] = _error(status, schema_of)
    for status, text, kind in op.extra_responses:
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": schema_of(kind)}},
        }
    out["responses"] = dict(sorted(responses.items()))
    out["security"] = [] if op.public else [{"bearer": []}]
    return out


def spec(app: web.Application) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of ``app``'s routes."""
    ops = operations_of(app)
    schemas, components = _schemas(tuple(_types(ops)))

    def schema_of(kind: Any) -> Schema:
        return schemas[_key(kind)]

    paths: dict[str, dict[str, Schema]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, ops, schema_of, components
        )
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
            {"name": "console", "description": "The web console's pages and session (F13)"},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
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


@routes.operation(
    "GET", "/openapi.json", "getOpenApi", "This document", tag="ops",
    returns=dict[str, Any], public=True,
)  # fmt: skip
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[SPEC_BODY], content_type="application/json", charset="utf-8"
    )


# The document, built once at start-up: the route table is frozen by then, and building it
# (every model's schema, ~70 KB of JSON) is milliseconds a request need not spend.
SPEC_BODY = web.AppKey("openapi_body", bytes)


async def build_spec(app: web.Application) -> None:
    app[SPEC_BODY] = json.dumps(spec(app), ensure_ascii=False).encode()
