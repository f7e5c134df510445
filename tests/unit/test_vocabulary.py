"""One word, one definition: the lists that mean the same thing cannot drift apart.

Which step fields are templates is said once, by the connector model (``TEMPLATES``,
``PATHS``, ``LITERALS`` of each step type); validation, references and the executor
must all read it.  These tests fill every field of every step type and check that the
three agree with the model, so a local list in any of them fails here.  The same for
the event roots, the statuses and the attribute-name rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, get_args, get_type_hints

import msgspec
import msgspec.inspect as mi
import pytest

from libs.domain import contacts, events, references
from libs.domain.connector import (
    BranchStep,
    ConnectorConfig,
    FilterStep,
    FormatterStep,
    Group,
    Step,
    WhatsAppStep,
    walk,
)
from services.config import validation
from services.executor.core import engine

STEP_TYPES: tuple[type[Any], ...] = get_args(Step)
ACTION_TYPES: tuple[type[Any], ...] = get_args(engine.ActionStep)
# Step types whose every field can be filled with text.
TEXT_TYPES = (FormatterStep, *ACTION_TYPES)


def _kind(field: mi.Field) -> str:
    """``str``, ``dict``, ``list`` (of text) or ``other``."""
    types = [
        t for t in getattr(field.type, "types", (field.type,)) if not isinstance(t, mi.NoneType)
    ]
    (only,) = types
    if isinstance(only, mi.StrType):
        return "str"
    if isinstance(only, mi.DictType):
        return "dict"
    if isinstance(only, mi.ListType) and isinstance(only.item_type, mi.StrType):
        return "list"
    return "other"


def filled(cls: type[Any], text: Any) -> Any:
    """A step of type ``cls`` with every text field set to ``text(name)`` (in a dict's
    one value or a list's one item for those fields); other fields keep their default."""
    values: dict[str, Any] = {}
    for field in mi.type_info(cls).fields:  # type: ignore[attr-defined]
        kind = _kind(field)
        if kind == "str":
            values[field.name] = text(field.name)
        elif kind == "dict":
            values[field.name] = {"k": text(field.name)}
        elif kind == "list":
            values[field.name] = [text(field.name)]
    return cls(**values)


def _where(cls: type[Any], name: str) -> str:
    kind = _kind(next(f for f in mi.type_info(cls).fields if f.name == name))  # type: ignore[attr-defined]
    return {"dict": f"$.steps[0].{name}.k", "list": f"$.steps[0].{name}[0]"}.get(
        kind, f"$.steps[0].{name}"
    )


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("cls", STEP_TYPES, ids=lambda c: c.__name__)
def test_every_step_field_is_a_template_a_path_or_a_literal(cls: type[Any]) -> None:
    kinds = (*cls.TEMPLATES, *cls.PATHS, *cls.LITERALS)
    assert sorted(kinds) == sorted(cls.__struct_fields__), "classify each field exactly once"


def test_template_language_is_a_literal_language_code() -> None:
    assert "template_language" in WhatsAppStep.LITERALS
    assert "template_name" in WhatsAppStep.TEMPLATES


# ---------------------------------------------------------------- the consumers agree


@pytest.mark.parametrize("cls", TEXT_TYPES, ids=lambda c: c.__name__)
def test_references_read_exactly_the_template_and_path_fields(cls: type[Any]) -> None:
    step = filled(
        cls, lambda name: f"body.{name}" if name in cls.PATHS else f"{{{{ body.{name} }}}}"
    )
    refs = set(references.references(ConnectorConfig(steps=[step])))
    expected = {(_where(cls, name), f"body.{name}") for name in (*cls.TEMPLATES, *cls.PATHS)}
    assert refs == expected


@pytest.mark.parametrize("cls", TEXT_TYPES, ids=lambda c: c.__name__)
def test_validation_compiles_exactly_the_template_fields(cls: type[Any]) -> None:
    step = filled(cls, lambda name: "body.x" if name in cls.PATHS else "{{ broken")
    problems = validation.validate(ConnectorConfig(steps=[step]))
    broken = {where for where, message in problems if "template does not compile" in message}
    assert broken == {_where(cls, name) for name in cls.TEMPLATES}


@pytest.mark.parametrize("cls", TEXT_TYPES, ids=lambda c: c.__name__)
def test_validation_parses_exactly_the_path_fields(cls: type[Any]) -> None:
    step = filled(cls, lambda name: "body..x" if name in cls.PATHS else "text")
    problems = validation.validate(ConnectorConfig(steps=[step]))
    bad_paths = {where for where, message in problems if "template" not in message}
    assert {_where(cls, name) for name in cls.PATHS} <= bad_paths
    assert not {w for w, _ in problems} & {_where(cls, n) for n in (*cls.TEMPLATES, *cls.LITERALS)}


@pytest.mark.parametrize("cls", ACTION_TYPES, ids=lambda c: c.__name__)
def test_the_executor_renders_exactly_the_template_fields(cls: type[Any]) -> None:
    step = filled(cls, lambda name: f"{{{{ body.{name} }}}}")
    context = {"body": {name: f"<{name}>" for name in cls.__struct_fields__}}
    rendered, missing = engine.render_fields(step, context)
    assert missing == []
    for name in cls.__struct_fields__:
        value = getattr(step, name)
        if name not in cls.TEMPLATES:
            assert rendered[name] == value, name
        elif isinstance(value, dict):
            assert rendered[name] == {"k": f"<{name}>"}
        elif isinstance(value, list):
            assert rendered[name] == [f"<{name}>"]
        else:
            assert rendered[name] == f"<{name}>"


def test_a_template_language_is_accepted_and_sent_as_written() -> None:
    step = WhatsAppStep(id="w", to="+14155550100", template_name="hello", template_language="en_US")
    assert validation.validate(ConnectorConfig(steps=[step])) == []
    odd = msgspec.structs.replace(step, template_language="{{ body.lang }}")
    rendered, _ = engine.render_fields(odd, {"body": {"lang": "pt_BR"}})
    assert rendered["template_language"] == "{{ body.lang }}"
    refs = references.references(ConnectorConfig(steps=[odd]))
    assert not [r for r in refs if "template_language" in r[0]]


# ---------------------------------------------------------------- the walk


def test_walk_visits_every_step_depth_first_with_its_place() -> None:
    inner = FilterStep(id="f", when=Group())
    tree: list[Any] = [
        BranchStep(id="b", steps=[inner, BranchStep(id="c", steps=[inner])]),
        inner,
    ]
    places = [(at.where, at.step.id, at.branch) for at in walk(tree)]
    assert places == [
        ("$.steps[0]", "b", "$.steps"),
        ("$.steps[0].steps[0]", "f", "$.steps[0].steps"),
        ("$.steps[0].steps[1]", "c", "$.steps[0].steps"),
        ("$.steps[0].steps[1].steps[0]", "f", "$.steps[0].steps[1].steps"),
        ("$.steps[1]", "f", "$.steps"),
    ]


# ---------------------------------------------------------------- roots and statuses


def _received() -> events.EventReceived:
    return events.EventReceived(
        event_id="e1",
        connector_id="c1",
        connector_version=1,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id="r1",
        request=events.Request(
            method="POST", headers={}, query={}, source_ip=None, content_type=None, size=0
        ),
        body={},
        custom_variables={},
    )


def test_event_roots_are_the_context_and_document_roots_its_part() -> None:
    event = _received()
    assert tuple(event.context()) == events.EVENT_ROOTS
    assert tuple(event.document()) == events.DOCUMENT_ROOTS
    assert set(events.DOCUMENT_ROOTS) <= set(events.EVENT_ROOTS)


@pytest.mark.parametrize(
    ("values", "literal"),
    [
        (events.EVENT_STATUSES, events.EventStatus),
        (events.STEP_STATUSES, events.StepStatus),
        (events.MAPPING_STATUSES, events.MappingStatus),
        (events.VERDICTS, events.Verdict),
    ],
)
def test_each_status_tuple_is_its_literal(values: tuple[str, ...], literal: Any) -> None:
    assert values == get_args(literal)


def test_verdicts_are_event_statuses() -> None:
    assert set(events.VERDICTS) <= set(events.EVENT_STATUSES)
    assert get_args(get_type_hints(engine.Outcome)["status"]) == events.VERDICTS


# ---------------------------------------------------------------- attribute names, emails


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("city", True),
        ("plan_2", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("City", False),
        ("2nd", False),
        ("", False),
        ("city\n", False),
        ("ci-ty", False),
        (7, False),
    ],
)
def test_attribute_name_rule(name: Any, ok: bool) -> None:
    assert contacts.is_attribute_name(name) is ok


@pytest.mark.parametrize("name", ["city", "city\n", "City", "a" * 65])
def test_the_attribute_name_pattern_means_the_same_in_a_schema(name: str) -> None:
    """``ATTRIBUTE_NAME_PATTERN`` as a msgspec constraint (what the API and its OpenAPI
    schema use) accepts exactly what ``is_attribute_name`` accepts."""
    named = Annotated[str, msgspec.Meta(pattern=contacts.ATTRIBUTE_NAME_PATTERN)]
    try:
        msgspec.convert(name, named)
        accepted = True
    except msgspec.ValidationError:
        accepted = False
    assert accepted is contacts.is_attribute_name(name)


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("  Ann.Lee@Example.COM ", "ann.lee@example.com"),
        ("Ann <ann@x.io>", "ann@x.io"),
        ("two words@example.com", None),
        ("a@b", None),
        ("a@b.c\n", "a@b.c"),
        (42, None),
    ],
)
def test_email_rule(raw: Any, email: str | None) -> None:
    assert contacts.normalize_email(raw) == email


def test_the_system_attributes_are_one_table() -> None:
    """What the executor puts in ``system``, what validation accepts as ``system.*``, and
    what the structure listing shows are the same names (``contact_id`` was missing
    from validation and the listing)."""
    from services.config import structure_api
    from services.executor.app import build_context

    received = _received()
    mapped = events.EventMapped(
        event_id=received.event_id,
        connector_id=received.connector_id,
        connector_version=1,
        occurred_at=received.occurred_at,
        correlation_id="r1",
        received=received,
        mapping=events.MappingResult(
            status="mapped", contact_id="k1", contact={"name": "Ann", "email": "a@x.io"}
        ),
    )
    system = build_context(mapped)["system"]
    assert set(system) == contacts.SYSTEM_NAMES
    assert (system["contact_id"], system["name"], system["mobile"]) == ("k1", "Ann", None)
    listed = {a.path for a in structure_api.SYSTEM_ATTRIBUTES}
    assert listed == {f"system.{name}" for name in contacts.SYSTEM_NAMES}
    for name in [*sorted(contacts.SYSTEM_NAMES), "nope"]:
        url = "https://x.io/{{ system." + name + " }}"
        step = {"type": "http", "id": "h", "url": url}
        config = msgspec.convert({"steps": [step]}, ConnectorConfig)
        problems = validation.validate(config)
        assert (problems == []) is (name != "nope"), (name, problems)


def test_every_event_root_is_a_document_root_or_listed_request_metadata() -> None:
    assert set(events.EVENT_ROOTS) == set(events.DOCUMENT_ROOTS) | set(events.METADATA_ROOTS)
    assert not set(events.DOCUMENT_ROOTS) & set(events.METADATA_ROOTS)


def test_the_log_filter_statuses_are_received_the_verdicts_and_the_requests() -> None:
    from services.config import models

    expected = ("received", *events.VERDICTS, *events.REQUEST_STATUSES, "dead_lettered")
    assert expected == models.EVENT_STATUSES
