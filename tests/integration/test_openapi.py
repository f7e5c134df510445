"""The OpenAPI spec: it lists exactly the routes the config app serves, it is a valid
OpenAPI 3.1 document, and schemathesis' generated requests against the running service
(random and known ids, valid and invalid inputs) never get a 5xx and every response
conforms to the spec (status, content type, body schema)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from libs.domain.channels import Channel
from libs.domain.connector import ConnectorConfig
from libs.infra.settings import Settings
from services.config import openapi
from services.config.app import create_app
from services.config.context import CTX
from tests.support.fixtures import wait_for
from tests.support.system import Api, InProcessSystem

# Generated requests per operation and mode (valid/invalid data); a quarter of that with
# random path values.  The default keeps the test under a minute on 2 cores.  The seed
# makes CI reproducible; explore further locally, e.g.
# HOOKLINE_FUZZ_EXAMPLES=200 HOOKLINE_FUZZ_SEED=7 pytest tests/integration/test_openapi.py
EXAMPLES = int(os.environ.get("HOOKLINE_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("HOOKLINE_FUZZ_SEED", "1"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _spec() -> dict[str, Any]:
    return openapi.spec(create_app(Settings(admin_token="unused")))


def test_spec_lists_exactly_the_registered_routes() -> None:
    app = create_app(Settings(admin_token="unused"))
    registered = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "OPTIONS") and route.resource is not None
    }
    documented = openapi.operations(openapi.spec(app))
    assert registered - documented == set(), "routes missing from the OpenAPI spec"
    assert documented - registered == set(), "spec operations the app does not serve"


def test_every_api_operation_needs_the_bearer_token_and_documents_errors() -> None:
    spec = _spec()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            if path.startswith("/api/v1/"):
                assert operation["security"] == [{"bearer": []}], where
                assert "401" in operation["responses"], where
            else:
                assert operation["security"] == [], where
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, where


def test_configuration_schemas_are_the_structs_own() -> None:
    """The configuration format documented is the one the API decodes (msgspec)."""
    _, generated = msgspec.json.schema_components(
        [ConnectorConfig, Channel], ref_template="#/components/schemas/{name}"
    )
    documented = _spec()["components"]["schemas"]
    for name, schema in generated.items():
        assert documented[name] == schema, name
    config = documented["ConnectorSave"]["properties"]["config"]["anyOf"][0]
    assert config == {"$ref": "#/components/schemas/ConnectorConfig"}


def test_every_schema_is_generated_from_the_models() -> None:
    """Nothing is hand-written: the spec's schemas are exactly what msgspec generates
    from the operations' types (request and response bodies, query and path
    parameters), and every component is a msgspec Struct's."""
    app = create_app(Settings(admin_token="unused"))
    ops = openapi.operations_of(app)
    kinds = openapi._types(ops)
    _, generated = msgspec.json.schema_components(kinds, ref_template=openapi.REF)
    spec = openapi.spec(app)
    assert spec["components"]["schemas"] == generated
    structs = {name: kind for name, kind in _struct_types(kinds).items()}
    assert set(generated) == set(structs), "a component that is not a Struct's"
    # Every operation's bodies are its types' schemas.
    for op in ops:
        operation = spec["paths"][op.path][op.method.lower()]
        if op.body is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body == _schema(op.body), op.operation_id
        if op.returns is not None:
            ok = operation["responses"][str(op.status)]["content"][op.media_type]["schema"]
            assert ok == _schema(op.returns), op.operation_id


def _schema(kind: Any) -> Any:
    (schema,), _ = msgspec.json.schema_components([kind], ref_template=openapi.REF)
    return schema


def _struct_types(kinds: list[Any]) -> dict[str, type[msgspec.Struct]]:
    """Every Struct type reachable from ``kinds`` (fields, unions, containers), by name."""
    found: dict[str, type[msgspec.Struct]] = {}

    def walk(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls.__name__ in found:
                return
            found[info.cls.__name__] = info.cls
            for f in info.fields:
                walk(f.type)
            return
        for value in vars(info).values() if hasattr(info, "__dict__") else ():
            _walk_value(value, walk)
        for slot in getattr(type(info), "__struct_fields__", ()):
            _walk_value(getattr(info, slot), walk)

    for info in msgspec.inspect.multi_type_info(kinds):
        walk(info)
    return found


def _walk_value(value: Any, walk: Callable[[Any], None]) -> None:
    if isinstance(value, msgspec.inspect.Type):
        walk(value)
    elif isinstance(value, tuple):
        for item in value:
            _walk_value(item, walk)


OPERATION_CODES = {"invalid_attribute", "invalid_agent", "invalid_channel"}


def test_body_errors_are_the_api_errors() -> None:
    """What msgspec refuses becomes the API's 422 with every problem's path; fields
    that always had their own error code keep it."""
    from libs.infra.http import ApiError
    from services.config import decoding, models

    cases = [
        (models.SubscriberAttributeCreate, {"name": "City", "type": "x", "extra": 1},
         "invalid_attribute", ["$.extra", "$.name", "$.type"]),
        (models.AgentCreate, {"name": ["X"]}, "invalid_agent", ["$.email", "$.name"]),
        (models.ConnectorSave, {"config": {}}, "version_required", ["$.version"]),
        (models.ConnectorSave, {"version": 0}, "version_required", ["$.version"]),
        (models.ConnectorSave, {"version": 1, "config": {"steps": 5}}, "invalid_config",
         ["$.config.steps"]),
        (models.ConnectorCreate, {"name": "  "}, "invalid_name", ["$.name"]),
        (models.RotateUrl, {"grace_seconds": True}, "invalid_grace", ["$.grace_seconds"]),
        (models.Replay, {"version": 2**64}, "invalid_version", ["$.version"]),
        (models.StructureReplace, {}, "sample_required", ["$.sample"]),
        (models.ChannelCreate, {"type": "sms"}, "invalid_channel", ["$.type"]),
        (models.ChannelCreate, {"type": "email", "port": "1", "id": "a b"}, "invalid_channel",
         ["$.id", "$.host", "$.port", "$.from_address"]),
    ]  # fmt: skip
    for model, raw, code, paths in cases:
        with pytest.raises(ApiError) as caught:
            # A resource's own code is the operation's; the others override any.
            decoding.decode(model, raw, code if code in OPERATION_CODES else "invalid_body")
        error = caught.value
        assert (error.status, error.code) == (422, code), raw
        assert [p["path"] for p in error.extra["problems"]] == paths, raw
    assert decoding.decode(models.ConnectorSave, {"version": 3}, "x").version == 3


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[InProcessSystem]:
    # The executor answers dry-runs; no mapper, so generated configurations never act.
    running = await InProcessSystem(settings).start(only=("config", "ingest", "executor"))
    yield running
    await running.stop()


@dataclass
class Finding:
    operation: str
    variant: str
    message: str


@dataclass
class Fuzz:
    """Every operation, in both generation modes; operations with path parameters once
    with random values (mostly 404s: parsing of odd path values) and once with the
    values of existing objects (the handlers' logic)."""

    base: str
    token: str
    known: dict[str, dict[str, Any]]  # collection (/api/v1/<name>) -> path values
    findings: list[Finding] = field(default_factory=list)
    calls: int = 0
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def run(self) -> None:
        schema = schemathesis.openapi.from_url(self.base + "/openapi.json", timeout=10)
        schema.validate()  # a valid OpenAPI 3.1 document
        operations = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operations.append(result.ok())
        # Deletions of the known objects last, so the other operations still find them.
        operations.sort(key=lambda op: op.method.upper() == "DELETE")
        for operation in operations:
            names = [p.name for p in operation.path_parameters]
            known = self.known.get(openapi.collection(operation.path), {})
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if not names:
                    self._operation(operation, mode, None, EXAMPLES)
                    continue
                self._operation(operation, mode, None, max(2, EXAMPLES // 4))
                if all(n in known for n in names):
                    self._operation(operation, mode, {n: known[n] for n in names}, EXAMPLES)

    def _operation(
        self,
        operation: APIOperation[Any, Any, Any, Any],
        mode: GenerationMode,
        path_values: dict[str, Any] | None,
        examples: int,
    ) -> None:
        variant = f"{mode.value} data, {'known' if path_values else 'random'} path values"
        label = operation.label
        found: list[str] = []
        headers = {"Authorization": f"Bearer {self.token}"}

        def once(case: Case[Any]) -> None:
            self.calls += 1
            try:
                response = case.call(base_url=self.base, headers=headers, timeout=15)
                self.statuses.setdefault(label, set()).add(response.status_code)
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # FailureGroup (with curl), no answer
                if len(found) < 3:
                    found.append(str(exc) or repr(exc))

        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_values)
        test: Callable[[], None] = seed(SEED)(
            hsettings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(strategy)(once))
        )
        with contextlib.suppress(Unsatisfiable):  # e.g. invalid data, but no input to spoil
            test()
        self.findings += [Finding(label, variant, m) for m in found]


async def _seed(api: Api, system: InProcessSystem) -> dict[str, dict[str, Any]]:
    """Objects for the known-values variant: a connector with a logged event and a
    structure, a channel, a subscriber attribute, an agent and a contact."""
    connector = await api.create_connector("fuzzed")
    await system.knows(connector)
    async with api.session.post(
        system.ingest_url(connector) + "?value=day1", json={"email": "a@example.com"}
    ) as response:
        assert response.status == 200, await response.text()
    path = f"/api/v1/connectors/{connector['id']}"
    items: list[dict[str, Any]] = await wait_for(
        lambda: _items(api, path + "/events"), what="the event in the log"
    )
    await api.call(
        "PUT", path + "/structure", {"sample": {"body": {"email": "a@example.com"}}}, expect=200
    )
    await api.call(
        "POST",
        "/api/v1/channels",
        {"id": "hooks", "type": "http", "base_url": "https://example.com"},
        expect=201,
    )
    await api.call("POST", "/api/v1/attributes", {"name": "city", "type": "text"}, expect=201)
    await api.call("POST", "/api/v1/agents", {"email": "owner@example.com"}, expect=201)
    # Contacts are written by the mapper only (not running here): one as it writes them.
    now = datetime.now(UTC)
    await (
        system.apps["config"]
        .app[CTX]
        .store.contacts.insert_one(
            {
                "_id": "contact-1",
                "mobile": "+14155550100",
                "email": "a@example.com",
                "name": "Ada",
                "attributes": {"city": "Paris"},
                "created_at": now,
                "updated_at": now,
            }
        )
    )
    await api.call("GET", "/api/v1/contacts/contact-1", expect=200)
    job = await api.call("POST", path + "/bulk-replay", {"status": "any"}, expect=202)
    return {
        "/api/v1/bulk-replays": {"id": job["id"]},
        "/api/v1/connectors": {"id": connector["id"], "event_id": items[0]["event_id"], "n": 1},
        "/api/v1/channels": {"id": "hooks"},
        "/api/v1/attributes": {"name": "city"},
        "/api/v1/agents": {"email": "owner@example.com"},
        "/api/v1/contacts": {"id": "contact-1"},
    }


async def _items(api: Api, path: str) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = (await api.call("GET", path))["items"]
    return items or None


@pytest.fixture
async def seeded(system: InProcessSystem) -> AsyncIterator[tuple[Api, dict[str, dict[str, Any]]]]:
    async with aiohttp.ClientSession() as session:
        api = Api(session, system.apps["config"].url, system.settings.admin_token)
        yield api, await _seed(api, system)


@pytest.mark.integration
async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    system: InProcessSystem, seeded: tuple[Api, dict[str, dict[str, Any]]]
) -> None:
    api, known = seeded
    async with api.session.get(api.base + "/openapi.json") as response:  # public: no token
        assert response.status == 200
        assert (await response.json())["openapi"] == "3.1.0"
    async with api.session.get(api.base + "/api/v1/connectors") as response:
        assert response.status == 401

    fuzz = Fuzz(api.base, system.settings.admin_token, known)
    # requests are blocking: run schemathesis in a thread while this loop serves them.
    await asyncio.to_thread(fuzz.run)

    report = "\n\n".join(f"### {f.operation} ({f.variant})\n{f.message}" for f in fuzz.findings)
    assert not fuzz.findings, f"{len(fuzz.findings)} finding(s):\n\n{report}"
    # Every documented operation was called (schemathesis leaves out the spec's own
    # path), and every one but those that create nothing got past validation and 404s.
    documented = {f"{method} {path}" for method, path in openapi.operations(_spec())}
    assert set(fuzz.statuses) == documented - {"GET /openapi.json"}
    succeeded = {label for label, codes in fuzz.statuses.items() if codes & {200, 201, 202, 204}}
    # The console's redirects answer 302; its login, session and files need what no
    # generator guesses (the admin token, a session cookie, a file's name).
    console = {"GET /", "GET /console", "GET /console/assets/{file}", "POST /console/login",
               "GET /console/session"}  # fmt: skip
    assert documented - succeeded == {"GET /openapi.json"} | console, fuzz.statuses
    assert all(fuzz.statuses[label] <= {302, 400, 401, 404, 422} for label in console)


# Requests that schemathesis found (or could find, rarely) answered 500 because of
# MongoDB's limits: integers beyond int64, dates whose UTC time is outside years
# 1..9999, strings with lone surrogates.  None may get a 5xx (a 4xx that says what is
# wrong; or, for an event's data, storing the value in a form MongoDB takes).
BIG = 2**64
EDGE_REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "{c}/events/{e}/replay", {"version": BIG}),
    ("POST", "{c}/events/{e}/dry-run", {"version": BIG}),
    ("POST", "{c}/versions/" + str(BIG) + "/restore", None),
    ("PUT", "{c}/structure", {"sample": {"body": {"n": BIG}}}),
    ("GET", "{c}/events?before=0001-01-01T00:00:00%2B23:59", None),
    ("GET", "{c}/events?before=9999-12-31T23:59:59-23:59", None),
    (
        "POST",
        "/api/v1/connectors",
        {
            "name": "big",
            "config": {
                "steps": [
                    {
                        "type": "filter",
                        "id": "f",
                        "when": {"conditions": [{"attribute": "x", "op": "equals", "value": BIG}]},
                    }
                ]
            },
        },
    ),
    ("POST", "{c}/events/{e}/dry-run", {"version": {"$gt": 0}}),  # no query operators
    # JSON may escape a lone UTF-16 surrogate; no UTF-8 string (nor BSON) can hold one.
    ("POST", "/api/v1/connectors", {"name": "\udbe1x"}),
    ("PUT", "{c}/structure", {"sample": {"body": {"a": "\udbe1x"}}}),
    ("POST", "/api/v1/agents", {"email": "a\udbe1@example.com"}),
]


@pytest.mark.integration
async def test_values_mongodb_cannot_store_get_4xx(
    seeded: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, known = seeded
    c = f"/api/v1/connectors/{known['/api/v1/connectors']['id']}"
    e = known["/api/v1/connectors"]["event_id"]
    answers = []
    for method, path, body in EDGE_REQUESTS:
        async with api.session.request(
            method, api.base + path.format(c=c, e=e), json=body, headers=api.headers
        ) as response:
            answers.append((response.status, method, path, body))
    wrong = [f"{status} {method} {path} {body!r}" for status, method, path, body in answers]
    wrong = [line for line in wrong if line.startswith("5")]
    assert wrong == [], "\n".join(wrong)
