"""The ``hookline`` CLI, run as a subprocess against the system running as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from libs.infra.settings import Settings
from libs.local import embedded
from tests.support.processes import ProcessSystem

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[ProcessSystem]:
    system = ProcessSystem(settings, tmp_path / "logs")
    yield system
    system.stop()


def cli_env(url: str, token: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env["HOOKLINE_URL"] = url
    if token is not None:
        env["HOOKLINE_ADMIN_TOKEN"] = token
    return env | extra


class Cli:
    def __init__(self, url: str, token: str | None) -> None:
        self.env = cli_env(url, token)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "services.config.cli", *args]

    def __call__(
        self, *args: str, expect: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


def poll(probe: Callable[[], T | None], what: str, timeout_s: float = 30.0) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def send(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def accepted(url: str, payload: Any) -> str:
    """Send until the ingest instance knows the (new) URL; the stored event's id."""

    def attempt() -> str | None:
        status, body = send(url, payload)
        assert status in (200, 404), status
        return str(body["event_id"]) if status == 200 else None

    return poll(attempt, f"ingest to accept {url}")


class Lines:
    """A subprocess' stdout, read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str) -> None:
        poll(lambda: any(text in line for line in self.lines), f"{text!r} in {self.lines!r}")


def test_cli_walkthrough(processes: ProcessSystem, tmp_path: Path) -> None:
    processes.start_all()
    hl = Cli(processes.url("config"), processes.settings.admin_token)

    # ------------------------------------------------------------ create, list, show
    created = hl.json("connectors", "create", "shop")
    cid, url = created["id"], created["url"]
    assert created["name"] == "shop" and created["version"] == 1
    assert url.startswith(processes.env["HOOKLINE_PUBLIC_URL"] + "/c/")
    listing = hl("connectors", "list").stdout.splitlines()
    assert listing[0].split() == ["ID", "NAME", "VERSION", "UPDATED", "URL"]
    row = next(line for line in listing if line.startswith(cid))
    assert row.split()[1:3] == ["shop", "1"] and row.split()[-1] == url
    assert all(line == line.rstrip() for line in listing)
    assert [c["id"] for c in hl.json("connectors", "list")["items"]] == [cid]
    assert json.loads(hl("--json", "connectors", "list").stdout) == hl.json("connectors", "list")
    shown = hl("connectors", "show", cid).stdout
    assert f"url      {url}" in shown and "config:" in shown
    assert hl.json("connectors", "show", cid)["config"] == created["config"]

    # ------------------------------------------------------------ events
    first = accepted(url + "?value=day1", {"email": "ada@example.com", "n": 1})
    log = poll(
        lambda: hl.json("events", "list", cid)["items"],
        "the event in the log",
    )
    assert [e["event_id"] for e in log] == [first]
    table = hl("events", "list", cid).stdout.splitlines()
    assert table[0].split()[:3] == ["EVENT", "RECEIVED", "STATUS"]
    assert table[1].startswith(first)
    detail = hl.json("events", "show", cid, first)
    assert detail["event"]["body"] == {"email": "ada@example.com", "n": 1}
    assert detail["event"]["custom_variables"] == {"value": "day1"}
    assert detail["request"]["method"] == "POST"
    human = hl("events", "show", cid, first).stdout
    assert f"event         {first}" in human and '"ada@example.com"' in human
    poll(
        lambda: hl.json("events", "list", cid, "--status", "succeeded")["items"],
        "the event to succeed (no steps)",
    )
    assert hl.json("events", "list", cid, "--status", "failed")["items"] == []

    tail = hl("events", "tail", cid).stdout
    assert first in tail and tail.splitlines()[0].startswith("EVENT")

    follow = subprocess.Popen(
        hl.command("events", "tail", cid, "--follow", "--interval", "0.2"),
        cwd=ROOT,
        env=hl.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(follow)
        lines.wait_for(first)
        second = accepted(url, {"email": "bob@example.com", "n": 2})
        lines.wait_for(second)
        assert follow.poll() is None, "--follow keeps polling"
    finally:
        follow.terminate()
        code = follow.wait(10)
    assert code == 0, follow.stderr.read() if follow.stderr else code
    printed = [line.split()[0] for line in lines.lines[1:]]
    assert printed.index(first) < printed.index(second)  # oldest first, new ones appended

    replay = hl.json("events", "replay", cid, first)
    assert replay["replay_of"] == first and replay["version"] == 1
    poll(
        lambda: any(
            e["event_id"] == replay["event_id"] for e in hl.json("events", "list", cid)["items"]
        ),
        "the replay in the log",
    )
    assert hl.json("events", "show", cid, replay["event_id"])["replay_of"] == first
    assert "replaying" in hl("events", "replay", cid, first, "--version", "1").stdout

    # ------------------------------------------------------------ stats
    def four_received() -> dict[str, Any] | None:
        counters: dict[str, Any] = hl.json("stats", "show", cid)
        return counters if counters["received"] >= 4 else None

    stats = poll(four_received, "4 received (2 events, 2 replays)")
    assert stats["rejected"] == 0
    shown_stats = hl("stats", "show", cid).stdout
    assert f"received    {stats['received']}" in shown_stats
    reset = hl.json("stats", "reset", cid)
    assert reset["received"] == 0
    assert datetime.fromisoformat(reset["since"]) > datetime.fromisoformat(stats["since"])
    assert "since" in hl("stats", "reset", cid).stdout
    accepted(url, {"email": "cy@example.com", "n": 3})
    poll(lambda: hl.json("stats", "show", cid)["received"] == 1, "1 received after the reset")

    # ------------------------------------------------------------ rotate-url
    rotated = hl.json("connectors", "rotate-url", cid)
    assert rotated["url"] != url and rotated["version"] == 1
    poll(lambda: send(url, {"n": 4})[0] == 404, "the old url to die")
    accepted(rotated["url"], {"n": 5})
    graced = hl("connectors", "rotate-url", cid, "--grace", "300").stdout
    new_url = graced.split("new url: ")[1].split()[0]
    accepted(new_url, {"n": 6})
    assert send(rotated["url"], {"n": 7})[0] == 200  # the previous one lives on for 300 s

    # ------------------------------------------------------------ versions, restore
    config = {"response": {"status": 202, "body": "ok {{ body.n }}", "content_type": "text/plain"}}
    config_file = tmp_path / "shop.json"
    config_file.write_text(json.dumps(config))
    updated = hl.json("connectors", "update", cid, "--config", str(config_file))
    assert updated["version"] == 2 and updated["config"]["response"]["status"] == 202
    versions = hl.json("connectors", "versions", cid)["items"]
    assert [v["version"] for v in versions] == [2, 1]
    lines_v = hl("connectors", "versions", cid).stdout.splitlines()
    assert lines_v[0].split() == ["VERSION", "SAVED", "STEPS", "MAPPING"]
    assert [line.split()[0] for line in lines_v[1:]] == ["2", "1"]
    restored = hl("connectors", "restore", cid, "1").stdout
    assert restored.strip() == "restored version 1 as version 3"
    now = hl.json("connectors", "show", cid)
    assert now["version"] == 3 and now["config"] == created["config"]
    assert [v["version"] for v in hl.json("connectors", "versions", cid)["items"]] == [3, 2, 1]

    # ------------------------------------------------------------ delete
    assert f"deleted connector {cid}" in hl("connectors", "delete", cid).stdout
    hl("connectors", "show", cid, expect=3)


def test_cli_exit_codes(processes: ProcessSystem, tmp_path: Path) -> None:
    processes.start("config")
    token = processes.settings.admin_token
    hl = Cli(processes.url("config"), token)
    cid = hl.json("connectors", "create", "codes")["id"]

    # 3: not found
    missing = hl("connectors", "show", "no-such-connector", expect=3)
    assert "connector not found" in missing.stderr and missing.stdout == ""
    hl("events", "show", cid, "no-such-event", expect=3)
    hl("connectors", "restore", cid, "7", expect=3)

    # 4: unauthorized (bad token; no token anywhere)
    bad = Cli(processes.url("config"), "wrong-token")("connectors", "list", expect=4)
    assert "Bearer" in bad.stderr
    # ... --token, before or after the command, beats $HOOKLINE_ADMIN_TOKEN
    wrong = Cli(processes.url("config"), "wrong-token")
    assert cid in wrong("--token", token, "connectors", "list").stdout
    assert cid in wrong("connectors", "list", "--token", token).stdout
    nowhere = cli_env(processes.url("config"), None, HOOKLINE_DATA_DIR=str(tmp_path / "none"))
    assert "no admin token" in hl("connectors", "list", env=nowhere, expect=4).stderr
    # ... and the token read from the data dir's admin-token file
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "admin-token").write_text(token + "\n")
    from_file = cli_env(processes.url("config"), None, HOOKLINE_DATA_DIR=str(tmp_path / "data"))
    assert cid in hl("connectors", "list", env=from_file).stdout

    # 5: invalid configuration (every problem listed) and stale save
    invalid = {
        "response": {"status": 99},
        "steps": [
            {
                "type": "filter",
                "id": "f",
                "when": {"conditions": [{"attribute": "body.x", "op": "regex", "value": "("}]},
            }
        ],
    }
    config_file = tmp_path / "invalid.json"
    config_file.write_text(json.dumps(invalid))
    refused = hl("connectors", "create", "bad", "--config", str(config_file), expect=5)
    assert "(422 invalid_config)" in refused.stderr
    assert "  $.response.status: " in refused.stderr
    assert "  $.steps[0].when.conditions[0].value: invalid regex" in refused.stderr
    assert [c["id"] for c in hl.json("connectors", "list")["items"]] == [cid]
    good_file = tmp_path / "good.json"
    good_file.write_text("{}")
    hl("connectors", "update", cid, "--config", str(good_file))  # now version 2
    stale = hl("connectors", "update", cid, "--config", str(good_file), "--version", "1", expect=5)
    assert "(409 stale_version)" in stale.stderr
    hl("events", "replay", cid, "no-such-event", "--version", "1", expect=3)

    # 2: usage
    hl("connectors", "frobnicate", expect=2)
    hl("connectors", "restore", cid, "one", expect=2)
    hl("events", "tail", cid, "--interval", "0", expect=2)
    hl("connectors", "create", "x", "--config", str(tmp_path / "missing.json"), expect=2)
    hl(expect=2)

    # 6: nothing listens
    closed = Cli(f"http://127.0.0.1:{embedded.free_port()}", token)
    refused_conn = closed("connectors", "list", expect=6)
    assert "cannot connect" in refused_conn.stderr
    assert cid in closed("connectors", "list", "--url", processes.url("config")).stdout


def test_cli_day2_pause_search_bulk_replay(processes: ProcessSystem) -> None:
    processes.start_all()
    hl = Cli(processes.url("config"), processes.settings.admin_token)
    created = hl.json("connectors", "create", "shop")
    cid, url = created["id"], created["url"]

    # ------------------------------------------------------------ search by value, time
    ids = {
        n: accepted(f"{url}?source=s{n % 2}", {"n": n, "customer": {"region": region}})
        for n, region in ((1, "eu"), (2, "us"), (3, "eu"))
    }

    def succeeded() -> set[str]:
        items = hl.json("events", "list", cid, "--status", "succeeded")["items"]
        return {e["event_id"] for e in items}

    poll(lambda: set(ids.values()) <= succeeded(), "the three events to succeed")

    def found(*args: str) -> list[str]:
        return [e["event_id"] for e in hl.json("events", "list", cid, *args)["items"]]

    assert found("--where", "body.customer.region=eu") == [ids[3], ids[1]]
    assert found("--where", "custom_variables.source=s0") == [ids[2]]
    assert found("--where", "body.customer.region=eu", "--where", "body.n=3") == [ids[3]]
    at = {n: hl.json("events", "show", cid, ids[n])["received_at"] for n in ids}
    assert found("--after", at[2]) == [ids[3], ids[2]]
    assert found("--before-time", at[2]) == [ids[1]]
    assert found("--status", "dead_lettered") == []
    page = hl("events", "list", cid, "--where", "body.customer.region=eu", "--limit", "1")
    assert page.stdout.splitlines()[1].startswith(ids[3])
    cursor = page.stderr.split("next page: --before ")[1].strip()
    rest = hl("events", "list", cid, "--where", "body.customer.region=eu", "--before", cursor)
    assert [line.split()[0] for line in rest.stdout.splitlines()[1:]] == [ids[1]]
    assert rest.stderr == ""
    bad_time = hl("events", "list", cid, "--after", "yesterday", expect=5)
    assert "received_after must be an ISO 8601 time" in bad_time.stderr
    hl("events", "list", cid, "--where", "status=failed", expect=2)

    # ------------------------------------------------------------ pause, resume
    paused = hl("connectors", "pause", cid).stdout
    assert paused == f"paused shop ({cid}): events are stored and answered; steps wait\n"
    assert hl.json("connectors", "show", cid)["paused"] is True
    held: list[str] = []

    def outcome() -> str | None:
        if hl.json("stats", "show", cid)["held"] >= 1:
            return "held"
        return "ran" if held[-1] in succeeded() else None

    # Until the executor has seen the pause an event may still run: send another then.
    for n in range(10, 15):
        held.append(accepted(url, {"n": n}))
        if poll(outcome, "the event to be held or to run") == "held":
            break
    else:
        raise AssertionError("no event was held")
    assert held[-1] not in succeeded()
    counters = hl("stats", "show", cid).stdout.split("\n")
    assert "paused      True" in counters and "held        1" in counters
    resumed = hl("connectors", "resume", cid).stdout
    assert resumed == f"resumed shop ({cid}): held events run in arrival order\n"
    poll(lambda: held[-1] in succeeded(), "the held event to run")
    assert hl.json("stats", "show", cid)["held"] == 0

    # ------------------------------------------------------------ bulk replay
    eu = ("--status", "any", "--where", "body.customer.region=eu")
    assert hl("bulk-replay", "start", cid, *eu, "--plan").stdout == "2 events match\n"
    either = (*eu, "--where", "body.customer.region=us")
    assert hl("bulk-replay", "start", cid, *either, "--plan").stdout == "3 events match\n"
    assert hl("bulk-replay", "start", cid, "--plan").stdout == "0 events match\n"  # failed
    waited = hl("bulk-replay", "start", cid, *eu, "--wait", "--interval", "0.1").stdout
    lines = waited.splitlines()
    assert lines[0].startswith("bulk replay ") and lines[0].endswith(": 2 events, running")
    job_id = lines[0].split()[2].rstrip(":")
    assert lines[-1] == "done: 2/2 replayed"
    shown = hl("bulk-replay", "show", job_id).stdout
    assert "state      done\n" in shown and "done       2/2\n" in shown
    assert f"connector  {cid}\n" in shown
    job = hl.json("bulk-replay", "show", job_id)
    assert job["selection"]["body"] == {"customer": {"region": "eu"}}
    assert job["selection"]["status"] == "any"
    again = hl("bulk-replay", "cancel", job_id).stdout
    assert again == f"bulk replay {job_id} was already done: 2/2 replayed\n"

    def replayed() -> list[str] | None:
        items = hl.json("events", "list", cid, "--where", "body.customer.region=eu")["items"]
        originals = sorted(e["replay_of"] for e in items if e["replay_of"])
        return originals if len(originals) == 2 else None

    assert poll(replayed, "the two replays in the log") == sorted([ids[1], ids[3]])
    second = hl.json("bulk-replay", "start", cid, *either, "--version", "1")
    assert second["matched"] == 5  # the three, and the first job's two replays
    listing = hl("bulk-replay", "list", cid).stdout.splitlines()
    assert listing[0].split() == ["ID", "STATE", "DONE", "MATCHED", "CREATED"]
    assert [line.split()[0] for line in listing[1:]] == [second["id"], job_id]
    assert listing[2].split()[1:4] == ["done", "2", "2"]
    cancelled = hl.json("bulk-replay", "cancel", second["id"])
    assert cancelled["state"] in ("cancelled", "done")  # it may have finished already
    hl("bulk-replay", "show", "no-such-job", expect=3)
    hl("bulk-replay", "start", "no-such-connector", expect=3)
