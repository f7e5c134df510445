"""End to end: the system started as real processes, the way a user starts it."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from libs.infra.settings import Settings
from libs.local import embedded
from services.executor.adapters.http import MAX_CONNECTIONS
from tests.support.fixtures import wait_for
from tests.support.processes import ProcessSystem
from tests.support.system import Api, Receiver, forward_n

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def drip(receiver_url: str, days: tuple[str, ...]) -> dict[str, Any]:
    return {
        "steps": [
            {
                "type": "branch",
                "id": day,
                "steps": [
                    {
                        "type": "filter",
                        "id": f"{day}-filter",
                        "when": {
                            "conditions": [
                                {
                                    "attribute": "custom_variables.value",
                                    "op": "equals",
                                    "value": day,
                                }
                            ]
                        },
                    },
                    {
                        "type": "http",
                        "id": f"{day}-send",
                        "url": f"{receiver_url}/{day}",
                        "headers": {"Content-Type": "application/json"},
                        "body": '{"message": "' + day + '", "email": "{{ body.email }}"}',
                    },
                ],
            }
            for day in days
        ]
    }


class Launcher:
    """``python -m libs.local.launcher`` (what ``make run`` runs) with free ports."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.ports = {
            k: embedded.free_port()
            for k in (
                *("INGEST", "CONFIG", "PROJECTOR", "MAPPER", "EXECUTOR"),
                *("NATS", "NATS_MONITOR", "MONGO"),
            )
        }
        self.env = dict(
            os.environ,
            HOOKLINE_DATA_DIR=str(data_dir),
            HOOKLINE_PUBLIC_URL=f"http://127.0.0.1:{self.ports['INGEST']}",
            **{f"HOOKLINE_{k}_PORT": str(v) for k, v in self.ports.items()},
            **env,
        )
        for var in ("NATS_URL", "MONGO_URI", "HOOKLINE_ADMIN_TOKEN"):
            self.env.pop(var, None)
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "libs.local.launcher"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Press Ctrl-C to stop." in line:
                self.ready.set()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


async def test_make_run_walkthrough(tmp_path: Path, receiver: Receiver) -> None:
    launcher = Launcher(tmp_path / "var", {"HOOKLINE_ALLOW_PRIVATE_TARGETS": "1"})
    try:
        started = await asyncio.to_thread(launcher.ready.wait, 120)
        assert started, "".join(launcher.lines)
        output = "".join(launcher.lines)
        token = (tmp_path / "var" / "admin-token").read_text().strip()
        assert token in output and launcher.url("CONFIG") in output
        # The projector runs as its own process; the log checked below is its work.
        assert f"projector :{launcher.ports['PROJECTOR']}" in output

        async with aiohttp.ClientSession() as session:
            api = Api(session, launcher.url("CONFIG"), token)
            connector = await api.create_connector("drip", drip(receiver.url, ("day1", "day2")))
            url = connector["url"]
            assert url.startswith(launcher.url("INGEST") + "/c/")

            async def send(target: str, day: str) -> int:
                async with session.post(
                    f"{target}?value={day}", json={"email": f"{day}@example.com"}
                ) as r:
                    return r.status

            # The new connector reaches ingest through the KV watch within moments.
            await wait_for(lambda: receiver.calls or send(url, "day1"), what="first send")
            assert await send(url, "day2") == 200
            await wait_for(lambda: len(receiver.calls) >= 2, what="two calls")
            bodies = sorted(msgspec.json.decode(c["body"])["message"] for c in receiver.calls)
            assert bodies == ["day1", "day2"]
            by_path = {c["path"]: msgspec.json.decode(c["body"]) for c in receiver.calls}
            assert by_path["/day1"]["email"] == "day1@example.com"

            cid = connector["id"]

            async def stats_done() -> dict[str, Any] | None:
                stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
                return stats if stats["succeeded"] >= 2 else None

            stats = await wait_for(stats_done, what="stats")
            assert (stats["received"], stats["succeeded"], stats["failed"]) == (2, 2, 0)
            events = await api.call("GET", f"/api/v1/connectors/{cid}/events")
            assert len(events["items"]) == 2
            for item in events["items"]:
                detail = await api.call(
                    "GET", f"/api/v1/connectors/{cid}/events/{item['event_id']}"
                )
                sent = [s for s in detail["execution"] if s["step_id"].endswith("-send")]
                assert [s["status"] for s in sent] == ["succeeded"]
            assert len(receiver.calls) == 2

            rotated = await api.call("POST", f"/api/v1/connectors/{cid}/rotate-url", expect=200)

            async def old_dead() -> bool:
                async with session.post(url, json={}) as r:
                    return r.status == 404

            await wait_for(old_dead, timeout_s=5, what="old URL to answer 404")
            assert await send(rotated["url"], "day3") == 200
    finally:
        launcher.proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        code = await asyncio.to_thread(launcher.proc.wait, 60)
    assert code == 0, "".join(launcher.lines)
    assert "Hookline stopped." in "".join(launcher.lines)


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Any:
    system = ProcessSystem(settings, tmp_path / "logs", {"HOOKLINE_ALLOW_PRIVATE_TARGETS": "1"})
    yield system
    system.stop()


@pytest.mark.parametrize("victim", ["executor", "mapper"])
async def test_killing_a_service_loses_no_event(
    processes: ProcessSystem, receiver: Receiver, victim: str
) -> None:
    """SIGKILL a consumer while webhooks arrive: every event answered 2xx is processed and
    logged exactly once after the service comes back."""
    processes.start_all()
    total = 300
    async with aiohttp.ClientSession() as session:
        api = Api(session, processes.url("config"), processes.settings.admin_token)
        connector = await api.create_connector("crash", forward_n(receiver.url + "/hook"))
        url = connector["url"]

        async def accepted_on_first_try() -> bool:
            async with session.post(url, json={"n": -1}) as r:
                return r.status == 200

        await wait_for(accepted_on_first_try, what="ingest to know the connector")
        accepted: list[int] = [-1]
        sem = asyncio.Semaphore(20)

        async def send(n: int) -> None:
            async with sem, session.post(url, json={"n": n}) as r:
                if r.status == 200:
                    accepted.append(n)

        first = asyncio.gather(*(send(n) for n in range(total // 2)))
        await wait_for(lambda: len(receiver.calls) >= 20, what="some work done")
        await asyncio.to_thread(processes.kill, victim)
        sent_before_kill = len(receiver.calls)
        await first
        await asyncio.gather(*(send(n) for n in range(total // 2, total)))
        await asyncio.to_thread(processes.start, victim)

        cid = connector["id"]

        async def all_logged() -> dict[str, Any] | None:
            stats = await api.call("GET", f"/api/v1/connectors/{cid}/stats")
            return stats if stats["succeeded"] + stats["failed"] >= len(accepted) else None

        stats = await wait_for(all_logged, timeout_s=90, what="every accepted event logged")
        assert stats == stats | {"received": len(accepted), "succeeded": len(accepted), "failed": 0}
        listing = await api.call("GET", f"/api/v1/connectors/{cid}/events?limit=500")
        assert len(listing["items"]) == len(accepted)
        assert len({i["event_id"] for i in listing["items"]}) == len(accepted)
        delivered = {int(c["body"]) for c in receiver.calls}
        assert delivered == set(accepted)
        # A repeat can only be an action in flight at the kill (sent, not yet journaled),
        # and each carries the key of its first sending: the receiver can drop it.
        keys: dict[int, set[str]] = {}
        for call in receiver.calls:
            keys.setdefault(int(call["body"]), set()).add(call["headers"]["Idempotency-Key"])
        repeats = len(receiver.calls) - len(delivered)
        assert all(len(k) == 1 for k in keys.values()), "a repeat with another key"
        # Only an action in flight at the kill is repeated: its first sending came before
        # the kill, and there are no more of them than the executor can have in flight.
        first_sent: dict[int, int] = {}
        for index, call in enumerate(receiver.calls):
            first_sent.setdefault(int(call["body"]), index)
        sendings = collections.Counter(int(c["body"]) for c in receiver.calls)
        repeated = [n for n, count in sendings.items() if count > 1]
        assert all(first_sent[n] < sent_before_kill for n in repeated), "repeat after the kill"
        assert repeats <= min(MAX_CONNECTIONS, sent_before_kill), repeats
        print(
            f"{victim} killed: {repeats} repeated calls of {len(receiver.calls)}, "
            f"{sent_before_kill} sent before the kill"
        )


def _child_pid(parent: int, module: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == parent and module.encode() in cmdline:
            return int(entry.name)
    return None


async def test_make_run_restarts_a_crashed_service(tmp_path: Path) -> None:
    """Before: one crashed service stopped everything.  Now it is restarted, and said so."""
    launcher = Launcher(tmp_path / "var", {})
    try:
        assert await asyncio.to_thread(launcher.ready.wait, 120), "".join(launcher.lines)
        first = _child_pid(launcher.proc.pid, "services.mapper")
        assert first is not None
        os.kill(first, signal.SIGKILL)

        def restarted() -> int | None:
            pid = _child_pid(launcher.proc.pid, "services.mapper")
            return pid if pid not in (None, first) else None

        await wait_for(restarted, timeout_s=30, what="the mapper restarted")
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                try:
                    async with session.get(launcher.url("MAPPER") + "/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout_s=60, what="the restarted mapper ready")
        assert any("mapper exited" in line and "restarting" in line for line in launcher.lines)
        assert launcher.proc.poll() is None  # the rest kept running
    finally:
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.proc.wait(60) == 0
