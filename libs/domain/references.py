"""Which attributes a configuration refers to, and where (for remap warnings and drift).

A reference is (where, path): ``where`` is the JSON path of the configuration field
(``$.steps[0].when.conditions[1].attribute``), ``path`` the attribute path it reads
(``body.customer.email``).  Which step fields are templates and which are paths is
the connector model's to say (``TEMPLATES``/``PATHS`` in ``libs.domain.connector``).
"""

from __future__ import annotations

from collections.abc import Iterator

from libs.domain import templating
from libs.domain.connector import (
    ConnectorConfig,
    FieldMapping,
    FilterStep,
    Group,
    Step,
    sources,
    walk,
)
from libs.domain.events import DOCUMENT_ROOTS


def _value_refs(value: str, where: str) -> Iterator[tuple[str, str]]:
    """A mapping value is a path, or a template when it contains ``{{``."""
    if templating.is_template(value):
        yield from _template_refs(value, where)
    else:
        yield where, value


def _template_refs(source: str, where: str) -> Iterator[tuple[str, str]]:
    for path in templating.variables(source):
        yield where, path


def _group_refs(group: Group, where: str) -> Iterator[tuple[str, str]]:
    for i, cond in enumerate(group.conditions):
        yield f"{where}.conditions[{i}].attribute", cond.attribute
    for j, sub in enumerate(group.groups):
        yield from _group_refs(sub, f"{where}.groups[{j}]")


def _step_refs(steps: list[Step]) -> Iterator[tuple[str, str]]:
    for here, step, _ in walk(steps):
        if isinstance(step, FilterStep):
            yield from _group_refs(step.when, f"{here}.when")
        for name, text, template in sources(step):
            if template:
                yield from _template_refs(text, f"{here}.{name}")
            else:
                yield f"{here}.{name}", text


def references(config: ConnectorConfig) -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    mapping = config.mapping
    if mapping is not None:
        for name in FieldMapping.SOURCES:
            value = getattr(mapping, name)
            if value:
                refs.extend(_value_refs(value, f"$.mapping.{name}"))
        for key, value in mapping.attributes.items():
            refs.extend(_value_refs(value, f"$.mapping.attributes.{key}"))
    refs.extend(_step_refs(config.steps))
    if config.response.body:
        refs.extend(_template_refs(config.response.body, "$.response.body"))
    if config.idempotency_key:
        refs.append(("$.idempotency_key", config.idempotency_key))
    return refs


def event_references(config: ConnectorConfig) -> list[tuple[str, str]]:
    """Only the references into the event's JSON document (what a structure can lack)."""
    return [
        (w, p) for w, p in references(config) if p.split(".", 1)[0].split("[")[0] in DOCUMENT_ROOTS
    ]
