"""Running a connector's steps over one event: filters, formatters, actions, branches.

The engine decides *what* runs; side effects go through the ``Actions`` port, so the
engine is tested with a recording fake and the real adapters are tested separately.
Steps that already succeeded in an earlier delivery (``done``) are not run again:
their recorded output is reused (idempotency per event + step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

from libs.domain import filters, formatters, templating
from libs.domain.connector import (
    AssignOwnerStep,
    BranchStep,
    EmailStep,
    FilterStep,
    FormatterStep,
    HttpStep,
    Step,
    UpdateContactStep,
    WhatsAppStep,
)
from libs.domain.events import StepLog, StepStatus, Verdict
from services.executor.errors import (
    BusyError,
    PermanentError,
    StepError,
    TransientError,
    classify_exception,
)

ActionStep = HttpStep | EmailStep | WhatsAppStep | UpdateContactStep | AssignOwnerStep
ACTION_TYPES = (HttpStep, EmailStep, WhatsAppStep, UpdateContactStep, AssignOwnerStep)


class Actions(Protocol):
    """The side effects a step can have. Each returns the step's output."""

    async def run(
        self, step: ActionStep, rendered: Mapping[str, Any], context: Mapping[str, Any]
    ) -> Any: ...


class Claim(NamedTuple):
    """What the journal says about running a step now: ``run`` it, it is ``done``
    (with its ``output``), or another delivery of the same event is running it (``busy``)."""

    state: Literal["run", "done", "busy"]
    output: Any = None


class Journal(Protocol):
    """Remembers side effects so a redelivery does not repeat them.

    ``claim`` before a step runs (a lease, so two deliveries of one event cannot run
    it at once), ``record`` once it succeeded, ``release`` when it failed.
    """

    async def claim(self, step_id: str) -> Claim: ...

    async def record(self, step_id: str, output: Any) -> None: ...

    async def release(self, step_id: str) -> None: ...


@dataclass
class Outcome:
    status: Verdict
    steps: list[StepLog]
    error: str | None = None


@dataclass
class _Run:
    context: dict[str, Any]
    actions: Actions
    journal: Journal
    done: Mapping[str, Any]
    now: datetime
    dry_run: bool
    logs: list[StepLog] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Retry(Exception):
    """Raised out of :func:`run` when a step failed transiently: the event is retried."""

    def __init__(self, error: TransientError, steps: list[StepLog]) -> None:
        super().__init__(error.message)
        self.error = error
        self.steps = steps


def render_fields(step: ActionStep, context: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every field of an action step, its template fields (``step.TEMPLATES``) rendered;
    returns the values and the missing attribute names."""
    out: dict[str, Any] = {}
    missing: list[str] = []

    def r(source: str) -> str:
        result = templating.render(source, context)
        missing.extend(result.missing)
        return result.text

    for name in step.__struct_fields__:
        value = getattr(step, name)
        if name not in step.TEMPLATES:
            out[name] = value
        elif isinstance(value, str):
            out[name] = r(value)
        elif isinstance(value, dict):
            out[name] = {k: r(v) for k, v in value.items()}
        elif isinstance(value, list):
            out[name] = [r(v) for v in value]
        else:
            out[name] = value
    return out, sorted(set(missing))


async def run(
    steps: list[Step],
    context: dict[str, Any],
    actions: Actions,
    journal: Journal,
    *,
    done: Mapping[str, Any],
    now: datetime,
    dry_run: bool = False,
) -> Outcome:
    state = _Run(context, actions, journal, done, now, dry_run)
    context.setdefault("formatter", {})
    await _branch(steps, state)
    if state.failed:
        return Outcome("failed", state.logs, "; ".join(state.failed))
    return Outcome("succeeded", state.logs)


async def _branch(steps: list[Step], state: _Run) -> None:
    """Run steps in order; a failed filter or a failed action stops this branch only:
    the rest of the list it sits in (nested branches included) is not run. Recursion,
    not ``connector.walk``: running needs no step's JSON path, so none is built."""
    for step in steps:
        if isinstance(step, BranchStep):
            await _branch(step.steps, state)
            continue
        if not await _step(step, state):
            return


async def _step(step: Step, state: _Run) -> bool:
    started = time.perf_counter()

    def log(status: StepStatus, output: Any = None, error: str | None = None) -> None:
        state.logs.append(
            StepLog(
                step_id=step.id,
                type=type(step).__struct_config__.tag,  # type: ignore[arg-type]
                status=status,
                output=output,
                error=error,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        )

    if isinstance(step, FilterStep):
        result = filters.evaluate(step.when, state.context)
        if result.passed:
            log("succeeded", {"passed": True})
            return True
        failed = msgspec.to_builtins(result.failed)
        log("filtered", {"passed": False, "failed": failed}, "filter conditions not met")
        return False

    if isinstance(step, FormatterStep):
        try:
            rendered = templating.render(step.input, state.context)
            value = formatters.apply(step.op, rendered.text, step.options, now=state.now)
        except (templating.TemplateError, formatters.FormatterError) as exc:
            log("failed", error=str(exc))
            state.failed.append(f"{step.id}: {exc}")
            return False
        state.context["formatter"][step.output] = value
        log("succeeded", {"value": value, "missing": rendered.missing or None})
        return True

    if isinstance(step, ACTION_TYPES):
        return await _action(step, state, log)
    log("failed", error=f"unknown step type {type(step).__name__}")
    return False


async def _action(step: ActionStep, state: _Run, log: Callable[..., None]) -> bool:
    if step.id in state.done:
        output = state.done[step.id]
        _expose(step, output, state)
        log("succeeded", {"result": output, "note": "done in an earlier delivery; not repeated"})
        return True
    try:
        rendered, missing = render_fields(step, state.context)
    except templating.TemplateError as exc:
        log("failed", error=f"template: {exc}")
        state.failed.append(f"{step.id}: template: {exc}")
        return False
    if state.dry_run:
        log("skipped", {"dry_run": True, "would_send": rendered, "missing": missing or None})
        return True
    claim = await state.journal.claim(step.id)
    if claim.state == "done":
        _expose(step, claim.output, state)
        log(
            "succeeded",
            {"result": claim.output, "note": "done in an earlier delivery; not repeated"},
        )
        return True
    if claim.state == "busy":
        busy = BusyError("another delivery of this event is running this step")
        log("failed", None, busy.message)
        raise Retry(busy, state.logs)
    try:
        try:
            output = await state.actions.run(step, rendered, state.context)
        except Exception as raw:  # anything else an adapter or library raised
            raise classify_exception(raw) from raw
    except TransientError as exc:
        await state.journal.release(step.id)
        log("failed", exc.output, exc.message)
        raise Retry(exc, state.logs) from None
    except StepError as exc:
        await state.journal.release(step.id)
        log("failed", exc.output, exc.message)
        state.failed.append(f"{step.id}: {exc.message}")
        return False
    await state.journal.record(step.id, output)
    _expose(step, output, state)
    log("succeeded", {"result": output, "missing": missing or None})
    return True


def _expose(step: ActionStep, output: Any, state: _Run) -> None:
    """An HTTP step's response is a formatter attribute for later steps."""
    if isinstance(step, HttpStep):
        state.context["formatter"][step.id] = output


__all__ = ["Actions", "Journal", "Outcome", "PermanentError", "Retry", "render_fields", "run"]
