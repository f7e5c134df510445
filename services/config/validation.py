"""Static checks of a connector configuration: every problem, with its JSON path."""

from __future__ import annotations

from libs import paths, templating
from libs.connector import (
    BranchStep,
    ConnectorConfig,
    FilterStep,
    FormatterStep,
    Step,
)

Problem = tuple[str, str]


def validate(config: ConnectorConfig) -> list[Problem]:
    problems: list[Problem] = []
    if not 100 <= config.response.status <= 599:
        problems.append(("$.response.status", "must be an HTTP status code (100..599)"))
    if config.response.body is not None:
        _template(config.response.body, "$.response.body", problems)
    if config.idempotency_key is not None:
        _path(config.idempotency_key, "$.idempotency_key", problems)
    seen: set[str] = set()
    _steps(config.steps, "$.steps", problems, seen)
    return problems


def _steps(steps: list[Step], at: str, problems: list[Problem], seen: set[str]) -> None:
    for i, step in enumerate(steps):
        here = f"{at}[{i}]"
        if not step.id:
            problems.append((f"{here}.id", "every step needs an id"))
        elif step.id in seen:
            problems.append((f"{here}.id", f"step id {step.id!r} is used twice"))
        seen.add(step.id)
        if isinstance(step, BranchStep):
            _steps(step.steps, f"{here}.steps", problems, seen)
        elif isinstance(step, FilterStep):
            from libs.filters import validate_group

            problems.extend(validate_group(step.when, f"{here}.when"))
        elif isinstance(step, FormatterStep):
            _template(step.input, f"{here}.input", problems)
        else:
            for name in step.__struct_fields__:
                value = getattr(step, name)
                if isinstance(value, str) and name not in {"id", "method"}:
                    _template(value, f"{here}.{name}", problems)
                elif isinstance(value, dict):
                    for key, item in value.items():
                        _template(item, f"{here}.{name}.{key}", problems)


def _template(source: str, at: str, problems: list[Problem]) -> None:
    issue = templating.check(source)
    if issue:
        problems.append((at, f"template does not compile: {issue}"))


def _path(path: str, at: str, problems: list[Problem]) -> None:
    try:
        paths.parse(path)
    except paths.PathError as exc:
        problems.append((at, str(exc)))
