"""The mapper on its own with field mapping on: can it keep up with ingest?

Run three times over the same numbers: every event creates its contact (``new``); every
event finds its contact holding the event's values already (``unchanged``: a returning
customer, same data); every event brings its contact a new value (``changed``: the visit
number), which is an update per event.

A backlog is built first: ``count`` events are sent to a connector with field mapping
while the mapper, executor and config service are paused (SIGSTOP), so ingest's accept
rate is measured with nothing downstream competing. Then only the mapper is resumed and
timed until its ``mapped`` counter has grown by the number of accepted events: its drain
rate, sharing the machine with SecantusDB and NATS only (executor, projector and ingest
idle), as when the mapper has a core of its own beside the database. Executor and config are
resumed afterwards and the run waits until every event is logged, so that the next phase
starts on an idle system.

``python -m bench.mapper`` runs this phase alone (for working on the mapper).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import hookapi, procs
from tests.support.fixtures import wait_for
from tests.support.system import ingest_knows

FIRST_N = 1_000_000  # numbers no earlier phase of the bench used
_MAPPED = re.compile(r'^hookline_mapper_messages_total\{outcome="mapped"\} (\S+)$', re.M)


@dataclass(frozen=True)
class MapperResult:
    events: int
    accepted: int
    ingest_per_s: float  # ingest's accept rate while the backlog was built
    drain_s: float
    mapper_per_s: float  # the mapper's drain rate
    complete: bool
    cores: dict[str, float]
    cpu_ms_per_event: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _mapped(session: aiohttp.ClientSession, metrics_url: str) -> float:
    async with session.get(metrics_url) as resp:
        found = _MAPPED.search(await resp.text())
    return float(found.group(1)) if found else 0.0


async def mapper_drain(
    system: procs.Hookline,
    api: hookapi.Api,
    pids: dict[str, int],
    count: int,
    *,
    first_n: int = FIRST_N,
    visit: int = 1,
    label: str = "drain",
    timeout_s: float = 300,
) -> MapperResult:
    """One drain of ``count`` events carrying the numbers of ``?n=first_n`` and up and
    ``?visit=visit``, mapped onto the contact's ``visit`` attribute."""
    mapping = {**hookapi.MAPPING, "attributes": {"visit": "custom_variables.visit"}}
    connector = await api.create_connector("bench-mapper", [hookapi.FILTER_STEP], mapping=mapping)
    metrics_url = f"http://127.0.0.1:{system.ports['HOOKLINE_MAPPER_PORT']}/metrics"
    timeout = aiohttp.ClientTimeout(total=30)
    pool = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(connector=pool, timeout=timeout) as session:

        async def known() -> bool:
            return await ingest_knows(session, connector["url"])

        await wait_for(known, timeout_s=30, what="ingest to learn the bench-mapper connector")
        before = await _mapped(session, metrics_url)
        downstream: dict[str, int] = {k: pids[k] for k in ("mapper", "executor", "config")}
        with procs.Paused(downstream) as paused:
            t0 = time.monotonic()
            accepted, _bad = await hookapi.send_all(
                session,
                connector["url"],
                count,
                50,
                t0 + timeout_s,
                first_n=first_n,
                query=f"&visit={visit}",
            )
            send_s = time.monotonic() - t0
            target = before + accepted
            meter = procs.CpuMeter({k: v for k, v in pids.items() if k in _DRAIN_PROCS})
            paused.resume("mapper")
            t1 = time.monotonic()
            profilers = _profile(pids, label)

            async def drained() -> bool:
                return await _mapped(session, metrics_url) >= target

            try:
                complete: bool = await wait_for(drained, timeout_s=timeout_s, what="the drain")
            except AssertionError:  # reported as incomplete, not raised
                complete = False
            drain_s = time.monotonic() - t1
            cores = meter.finish(meter.stop())
            for profiler in profilers:
                profiler.wait(60)
    await hookapi.wait_stable(api, connector["id"], timeout_s)
    return MapperResult(
        events=count,
        accepted=accepted,
        ingest_per_s=round(accepted / max(send_s, 1e-9), 1),
        drain_s=round(drain_s, 3),
        mapper_per_s=round(accepted / max(drain_s, 1e-9), 1),
        complete=complete,
        cores=cores,
        cpu_ms_per_event={
            name: round(1e3 * value * drain_s / max(accepted, 1), 3)
            for name, value in cores.items()
            if name in _DRAIN_PROCS
        },
    )


_DRAIN_PROCS = ("mapper", "secantusd-py", "nats-server")


async def drains(
    system: procs.Hookline, api: hookapi.Api, pids: dict[str, int], count: int
) -> dict[str, MapperResult]:
    """The three drains: contacts created, found unchanged, then changed."""
    await api.create_attribute(hookapi.VISIT_ATTRIBUTE)
    return {  # in this order: each drain leaves the contacts the next one expects
        kind: await mapper_drain(system, api, pids, count, visit=visit, label=kind)
        for kind, visit in (("new", 1), ("unchanged", 1), ("changed", 2))
    }


def _profile(pids: dict[str, int], label: str) -> list[subprocess.Popen[bytes]]:
    """With ``BENCH_PROFILE_DIR`` set, py-spy (installed by hand) samples the mapper and
    SecantusDB for the first seconds of the drain: where a developer looks next."""
    out = os.environ.get("BENCH_PROFILE_DIR")
    if not out:
        return []
    seconds = os.environ.get("BENCH_PROFILE_S", "3")
    procs_ = []
    for name in ("mapper", "secantusd-py"):
        argv = ["py-spy", "record", "--nonblocking", "-d", seconds, "-f", "raw"]
        argv += ["-p", str(pids[name]), "-o", str(Path(out) / f"{name}-{label}.txt")]
        procs_.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs_


def main() -> int:
    count = int(os.environ.get("BENCH_MAPPER_EVENTS", "3000"))
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as tmp:
        system = procs.start_hookline(Path(tmp))
        try:

            async def run() -> dict[str, MapperResult]:
                pids = procs.process_tree(system.popen.pid)
                async with aiohttp.ClientSession() as session:
                    api = hookapi.Api(session, system.api, system.token)
                    await api.create_channel(hookapi.BENCH_CHANNEL)
                    return await drains(system, api, pids, count)

            result = asyncio.run(run())
        finally:
            system.stop()
    for kind, drain in result.items():
        print(kind, drain.to_dict())
    return 0 if all(drain.complete for drain in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
