"""The steps engine with a recording fake for side effects and an in-memory journal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from libs.domain.connector import ConnectorConfig
from services.executor.core import engine
from services.executor.errors import PermanentError, TransientError
from tests.support.steps import day_branch

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeActions:
    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail or {}

    async def run(self, step: Any, rendered: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        self.calls.append((step.id, dict(rendered)))
        if step.id in self.fail:
            raise self.fail[step.id]
        return {"status": 200, "body": f"ok {step.id}"}


class MemoryJournal:
    def __init__(self, states: dict[str, engine.Claim] | None = None) -> None:
        self.states = states or {}
        self.released: list[str] = []

    async def claim(self, step_id: str) -> engine.Claim:
        return self.states.get(step_id, engine.Claim("run"))

    async def record(self, step_id: str, output: Any) -> None:
        self.states[step_id] = engine.Claim("done", output)

    async def release(self, step_id: str) -> None:
        self.released.append(step_id)


def config(steps: list[dict[str, Any]]) -> ConnectorConfig:
    return msgspec.convert({"steps": steps}, ConnectorConfig)


def day(n: int) -> dict[str, Any]:
    send = {
        "type": "http",
        "id": f"h{n}",
        "url": "https://example.com/{{ custom_variables.value }}",
        "body": "{{ formatter.loud }}",
    }
    return day_branch(f"day{n}", f"b{n}", f"f{n}", send)


CONTEXT = {"body": {"name": "ann"}, "custom_variables": {"value": "day2"}}
FORMAT = {
    "type": "formatter",
    "id": "up",
    "output": "loud",
    "op": "text.upper",
    "input": "{{ body.name }}",
}


async def _run(
    steps: list[dict[str, Any]], actions: FakeActions, journal: MemoryJournal, **kwargs: Any
) -> engine.Outcome:
    return await engine.run(
        config(steps).steps,
        dict(CONTEXT),
        actions,
        journal,
        done=kwargs.pop("done", {}),
        now=NOW,
        **kwargs,
    )


async def test_only_the_matching_branch_runs() -> None:
    actions = FakeActions()
    outcome = await _run([FORMAT, day(1), day(2), day(3)], actions, MemoryJournal())
    assert outcome.status == "succeeded"
    assert actions.calls == [
        (
            "h2",
            {
                "id": "h2",
                "url": "https://example.com/day2",
                "method": "POST",
                "headers": {},
                "body": "ANN",
                "channel": None,
                "timeout_s": 10.0,
            },
        )
    ]
    statuses = {s.step_id: s.status for s in outcome.steps}
    assert statuses == {
        "up": "succeeded",
        "f1": "filtered",
        "f2": "succeeded",
        "h2": "succeeded",
        "f3": "filtered",
    }
    failed = next(s for s in outcome.steps if s.step_id == "f1").output["failed"]
    assert failed[0]["actual"] == "day2" and failed[0]["expected"] == "day1"


async def test_done_steps_are_not_repeated() -> None:
    actions = FakeActions()
    journal = MemoryJournal({"h2": engine.Claim("done", {"status": 201})})
    outcome = await _run([day(2)], actions, journal)
    assert actions.calls == []
    assert outcome.steps[-1].output["result"] == {"status": 201}
    prefetched = await _run([day(2)], actions, MemoryJournal(), done={"h2": {"status": 202}})
    assert actions.calls == [] and prefetched.steps[-1].output["result"] == {"status": 202}


async def test_busy_step_retries_the_event() -> None:
    actions = FakeActions()
    with pytest.raises(engine.Retry) as raised:
        await _run([day(2)], actions, MemoryJournal({"h2": engine.Claim("busy")}))
    assert actions.calls == []
    assert "another delivery" in raised.value.error.message


@pytest.mark.parametrize(
    ("error", "retried"),
    [(TransientError("503", retry_after_s=2), True), (PermanentError("404"), False)],
    ids=["transient", "permanent"],
)
async def test_failures_release_the_claim(error: Exception, retried: bool) -> None:
    journal = MemoryJournal()
    steps = [day(2), {"type": "http", "id": "after", "url": "https://example.com/x"}]
    actions = FakeActions({"h2": error})
    if retried:
        with pytest.raises(engine.Retry) as raised:
            await _run(steps, actions, journal)
        assert raised.value.error.retry_after_s == 2
    else:
        outcome = await _run(steps, actions, journal)
        assert outcome.status == "failed" and "404" in (outcome.error or "")
        # the failure stopped its own branch only: the next top-level step still ran
        assert [c[0] for c in actions.calls] == ["h2", "after"]
    assert journal.released == ["h2"]


async def test_dry_run_sends_nothing() -> None:
    actions = FakeActions()
    outcome = await _run([FORMAT, day(2)], actions, MemoryJournal(), dry_run=True)
    assert actions.calls == []
    sent = next(s for s in outcome.steps if s.step_id == "h2")
    assert sent.status == "skipped" and sent.output["would_send"]["body"] == "ANN"


async def test_template_error_fails_the_step() -> None:
    steps = [{"type": "http", "id": "bad", "url": "https://x/{{ body.name.upper() }}{{ 1/0 }}"}]
    outcome = await _run(steps, FakeActions(), MemoryJournal())
    assert outcome.status == "failed"
    assert outcome.steps[0].error is not None and "template" in outcome.steps[0].error


def _http(step_id: str) -> dict[str, Any]:
    return {"type": "http", "id": step_id, "url": f"https://example.com/{step_id}"}


async def test_a_failure_deep_in_nested_branches_stops_only_its_own_list() -> None:
    """Three levels deep, and a list of 12 steps (so ``[1`` and ``[10`` are both places):
    a permanent failure skips the rest of its own list, nothing else."""
    inner = {"type": "branch", "id": "inner", "steps": [_http("boom"), _http("skipped")]}
    middle = {
        "type": "branch",
        "id": "middle",
        "steps": [_http("m0"), inner, _http("m2"), *(_http(f"w{i}") for i in range(9))],
    }
    steps = [middle, _http("after"), *(_http(f"t{i}") for i in range(10))]
    actions = FakeActions({"boom": PermanentError("410")})
    outcome = await _run(steps, actions, MemoryJournal())
    ran = [c[0] for c in actions.calls]
    expected = ["m0", "boom", "m2", *(f"w{i}" for i in range(9)), "after"]
    assert ran == [*expected, *(f"t{i}" for i in range(10))]
    assert outcome.status == "failed" and "skipped" not in ran
