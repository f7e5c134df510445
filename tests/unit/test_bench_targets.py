"""bench.targets judges issue 16's targets on one run's results document."""

from __future__ import annotations

from typing import Any

import pytest

from bench import targets


def results(**changes: Any) -> dict[str, Any]:
    """A results document with every figure exactly at its target."""
    out: dict[str, Any] = {
        "e2e_cpu_ms_per_event": {"nats-server": 0.1, "secantusd-py": 0.3, "ingest": 0.2},
        "e2e": {"events_per_s": 2500.0, "complete": True},
        "e2e_mapping": {"events_per_s": 2000.0, "complete": True},
        "baseline": {"requests_per_s": 10_000.0},
        "verification": {"requests_per_s": 6_000.0},
        "hookline": {"p99_ms": 30.0},
        "mapper": {"changed": {"mapper_per_s": 1500.0}},
        "memory_mib": {"ingest": {"peak": 80.0}, "nats-server": {"peak": 500.0}},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = out
        for key in parents:
            node = node[key]
        node[leaf] = value
    return out


def verdicts(out: dict[str, Any]) -> dict[str, bool]:
    return {t.name: t.met for t in targets.judge(out)}


def test_a_figure_at_its_limit_is_met_and_nats_server_is_no_service() -> None:
    judged = targets.judge(results())
    assert len(judged) == 7 and all(t.met for t in judged)
    assert {t.name: t.figure for t in judged}["CPU per event, all processes"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"e2e_cpu_ms_per_event__executor": 0.01}, "CPU per event, all processes"),
        ({"e2e__events_per_s": 2499.0}, "end to end, one filter"),
        ({"e2e_mapping__complete": False}, "end to end, one filter"),
        ({"e2e_mapping__events_per_s": 1999.0}, "end to end, field mapping"),
        ({"verification__requests_per_s": 5_990.0}, "ingest alone, verified / bare handler"),
        ({"hookline__p99_ms": 30.1}, "ingest p99, pipeline running"),
        ({"mapper__changed__mapper_per_s": 1499.0}, "changed contacts drained"),
        ({"memory_mib__ingest__peak": 80.5}, "largest service RSS peak"),
        ({"memory_mib": {}}, "largest service RSS peak"),
    ],
)
def test_each_target_is_missed_just_past_its_limit(change: dict[str, Any], name: str) -> None:
    judged = verdicts(results(**change))
    assert judged.pop(name) is False
    if "e2e_mapping__complete" not in change:
        assert all(judged.values())


def test_the_report_says_met_or_not_for_each(capsys: pytest.CaptureFixture[str]) -> None:
    targets.report(targets.judge(results(hookline__p99_ms=123.0)))
    lines = capsys.readouterr().out.splitlines()
    assert "6 of 7 met" in lines[1]
    assert sum("NOT MET" in line for line in lines) == 1
    assert any("123.00" in line and "NOT MET" in line for line in lines)
