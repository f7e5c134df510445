"""Issue 16's targets, each judged on one ``make bench`` run's results (a goal for the
benchmark, never a timed test): the figure, the limit, met or not."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CPU_MS_PER_EVENT = 0.6  # summed over every process, end to end with one filter
E2E_PER_S = 2500.0
E2E_MAPPING_PER_S = 2000.0
INGEST_ALONE_RATIO = 0.6  # of the bare aiohttp handler's req/s
P99_MS = 30.0  # ingest under wrk (50 connections) with the pipeline running
CHANGED_CONTACTS_PER_S = 1500.0
SERVICE_RSS_MIB = 80.0
SERVICES = ("ingest", "mapper", "executor", "config", "config.projector_main")


@dataclass(frozen=True)
class Target:
    name: str
    figure: float
    limit: float
    unit: str
    at_most: bool  # the figure must be <= the limit (else >=)

    @property
    def met(self) -> bool:
        return self.figure <= self.limit if self.at_most else self.figure >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"met": self.met}

    def line(self) -> str:
        sign = "<=" if self.at_most else ">="
        verdict = "met" if self.met else "NOT MET"
        return (
            f"  {self.name:<40} {self.figure:>10,.2f} {self.unit:<9}"
            f" target {sign} {self.limit:,.2f}  {verdict}"
        )


def judge(out: dict[str, Any]) -> list[Target]:
    """The targets over the results document of ``bench.__main__.results`` (with the
    memory measured after every run)."""
    cpu = round(sum(out["e2e_cpu_ms_per_event"].values()), 3)  # judged as printed
    memory = out.get("memory_mib") or {}
    services = [v["peak"] for k, v in memory.items() if k in SERVICES]
    changed = out["mapper"].get("changed", {}).get("mapper_per_s", 0.0)
    complete = out["e2e"]["complete"] and out["e2e_mapping"]["complete"]
    return [
        Target("CPU per event, all processes", cpu, CPU_MS_PER_EVENT, "ms", True),
        Target(
            "end to end, one filter",
            out["e2e"]["events_per_s"] if complete else 0.0,
            E2E_PER_S,
            "events/s",
            False,
        ),
        Target(
            "end to end, field mapping",
            out["e2e_mapping"]["events_per_s"] if complete else 0.0,
            E2E_MAPPING_PER_S,
            "events/s",
            False,
        ),
        Target(
            "ingest alone, verified / bare handler",
            _ratio(out["verification"]["requests_per_s"], out["baseline"]["requests_per_s"]),
            INGEST_ALONE_RATIO,
            "x",
            False,
        ),
        Target(
            "ingest p99, pipeline running",
            out["hookline"]["p99_ms"],
            P99_MS,
            "ms",
            True,
        ),
        Target("changed contacts drained", changed, CHANGED_CONTACTS_PER_S, "/s", False),
        Target(
            "largest service RSS peak",
            max(services, default=float("inf")),
            SERVICE_RSS_MIB,
            "MiB",
            True,
        ),
    ]


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def report(targets: list[Target]) -> None:
    met = sum(t.met for t in targets)
    print(f"\n  issue 16 targets ({met} of {len(targets)} met; raw bytes and verification on):")
    for target in targets:
        print(target.line())
