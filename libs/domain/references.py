"""Which attributes a configuration refers to, and where (for remap warnings and drift).

A reference is (where, path): ``where`` is the JSON path of the configuration field
(``$.steps[0].when.conditions[1].attribute``), ``path`` the attribute path it reads
(``body.customer.email``).
"""

from __future__ import annotations

from collections.abc import Iterator

from libs.domain import templating
from libs.domain.connector import (
    BranchStep,
    ConnectorConfig,
    FilterStep,
    FormatterStep,
    Group,
    Step,
)

EVENT_ROOTS = ("body", "custom_variables")


def _value_refs(value: str, where: str) -> Iterator[tuple[str, str]]:
    """A mapping value is a path, or a template when it contains ``{{``."""
    if "{{" in value or "{%" in value:
        for path in templating.variables(value):
            yield where, path
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


def _step_refs(steps: list[Step], where: str) -> Iterator[tuple[str, str]]:
    for i, step in enumerate(steps):
        here = f"{where}[{i}]"
        if isinstance(step, BranchStep):
            yield from _step_refs(step.steps, f"{here}.steps")
        elif isinstance(step, FilterStep):
            yield from _group_refs(step.when, f"{here}.when")
        elif isinstance(step, FormatterStep):
            yield from _template_refs(step.input, f"{here}.input")
        else:
            for name in step.__struct_fields__:
                value = getattr(step, name)
                if name == "channel_from" and isinstance(value, str):
                    yield f"{here}.{name}", value
                elif isinstance(value, str) and name not in {"id", "method", "channel"}:
                    yield from _template_refs(value, f"{here}.{name}")
                elif isinstance(value, dict):
                    for key, item in value.items():
                        yield from _template_refs(item, f"{here}.{name}.{key}")
                elif isinstance(value, list):
                    for k, item in enumerate(value):
                        if isinstance(item, str):
                            yield from _template_refs(item, f"{here}.{name}[{k}]")


def references(config: ConnectorConfig) -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    mapping = config.mapping
    if mapping is not None:
        for name in ("mobile", "email", "name", "channel_from", "owner_from"):
            value = getattr(mapping, name)
            if value:
                refs.extend(_value_refs(value, f"$.mapping.{name}"))
        for key, value in mapping.attributes.items():
            refs.extend(_value_refs(value, f"$.mapping.attributes.{key}"))
    refs.extend(_step_refs(config.steps, "$.steps"))
    if config.response.body:
        refs.extend(_template_refs(config.response.body, "$.response.body"))
    if config.idempotency_key:
        refs.append(("$.idempotency_key", config.idempotency_key))
    return refs


def event_references(config: ConnectorConfig) -> list[tuple[str, str]]:
    """Only the references into the event's JSON (what a structure can lack)."""
    return [
        (w, p) for w, p in references(config) if p.split(".", 1)[0].split("[")[0] in EVENT_ROOTS
    ]
