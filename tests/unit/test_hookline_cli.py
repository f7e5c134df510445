"""The ``hookline`` CLI against a small config API served over real HTTP on 127.0.0.1.

The fake API below keeps connectors, versions, events and counters in memory, answers
in the config API's shapes (``{"items": ...}``, ``{"error": {code, message,
problems}}``) and records every request.  Commands run in-process through typer's
CliRunner (tables, ``--json``, exit codes) or as subprocesses where the process itself
matters (``events tail --follow``, signals, a closed stdout, what gets imported).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from typer.testing import CliRunner, Result

from libs.infra.http import error
from services.config import models
from services.config.cli import app
from services.config.cli.errors import CliError
from services.config.cli.output import CONTROL, Column, cell, dig, pairs, table
from services.config.cli.session import Globals, open_session
from tests.support.fixtures import Running, free_port, serve

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"
DEADLINE_S = 20.0
BODY: web.RequestKey[Any] = web.RequestKey(
    "body"
)  # the request's JSON, read once by the middleware


def stamp(n: int) -> str:
    return f"2026-01-01T00:00:{n:02d}+00:00"


# ==================================================================== the fake API


class FakeApi:
    """Just enough of the config API, in memory; ``requests`` logs what arrived and
    ``answers`` what was sent back (the JSON bodies)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[Any] = []
        self.connectors: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}  # newest first
        self.stats: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # bulk replays
        self.stalled = False  # bulk replays make no progress

    # ---------------------------------------------------------------- state

    def add_connector(self, name: str, config: Any = None, url: str | None = None) -> str:
        cid = f"c{len(self.connectors) + 1}"
        self.connectors[cid] = {
            "id": cid,
            "name": name,
            "url": url or f"http://hooks.test/c/{cid}-token",
            "version": 1,
            "config": config if config is not None else {},
            "created_at": stamp(0),
            "updated_at": stamp(0),
            "paused": False,
        }
        self.versions[cid] = [{"version": 1, "saved_at": stamp(0), "config": {}}]
        self.events[cid] = []
        self.stats[cid] = {
            "received": 0,
            "succeeded": 0,
            "failed": 0,
            "duplicates": 0,
            "rejected": 0,
            "handshakes": 0,
            "since": stamp(0),
            "paused": False,
            "held": 0,
        }
        return cid

    def add_event(self, cid: str, status: str = "received", **extra: Any) -> dict[str, Any]:
        n = len(self.events[cid]) + 1
        event = {
            "event_id": f"ev-{n:04d}",
            "received_at": stamp(n),
            "status": status,
            "connector_version": self.connectors[cid]["version"],
            "error": None,
            "request": {"method": "POST", "content_type": "application/json"},
            "event": {"body": {"n": n}},
            **extra,
        }
        self.events[cid].insert(0, event)
        return event

    def saved(self, cid: str, config: Any, name: str | None = None) -> dict[str, Any]:
        c = self.connectors[cid]
        c["version"] += 1
        c["config"] = config
        c["updated_at"] = stamp(c["version"])
        if name:
            c["name"] = name
        self.versions[cid].insert(0, {"version": c["version"], "saved_at": stamp(1), **c})
        return c

    # ---------------------------------------------------------------- HTTP

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        base = "/api/v1/connectors"
        app.router.add_get(base, self.list_connectors)
        app.router.add_post(base, self.create)
        app.router.add_get(base + "/{cid}", self.show)
        app.router.add_put(base + "/{cid}", self.update)
        app.router.add_delete(base + "/{cid}", self.delete)
        app.router.add_post(base + "/{cid}/rotate-url", self.rotate)
        app.router.add_get(base + "/{cid}/versions", self.list_versions)
        app.router.add_post(base + "/{cid}/versions/{n}/restore", self.restore)
        app.router.add_get(base + "/{cid}/events", self.list_events)
        app.router.add_get(base + "/{cid}/events/{eid}", self.show_event)
        app.router.add_post(base + "/{cid}/events/{eid}/replay", self.replay)
        app.router.add_get(base + "/{cid}/stats", self.show_stats)
        app.router.add_post(base + "/{cid}/stats/reset", self.reset_stats)
        app.router.add_post(base + "/{cid}/pause", self.pause)
        app.router.add_post(base + "/{cid}/resume", self.resume)
        app.router.add_post(base + "/{cid}/bulk-replay", self.bulk_replay)
        app.router.add_get(base + "/{cid}/bulk-replays", self.list_jobs)
        app.router.add_get("/api/v1/bulk-replays/{id}", self.show_job)
        app.router.add_delete("/api/v1/bulk-replays/{id}", self.cancel_job)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = request[BODY] = await request.json() if request.can_read_body else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                # a parameter given more than once: the list of its values
                "query": {
                    k: vs[0] if len(vs := request.query.getall(k)) == 1 else vs
                    for k in request.query
                },
                "body": body,
                "authorization": request.headers.get("Authorization"),
            }
        )
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return error(401, "unauthorized", "a Bearer admin token is required")
        response: web.StreamResponse = await handler(request)
        return response

    def answer(self, data: Any) -> web.Response:
        self.answers.append(data)
        return web.json_response(data)

    def connector(self, request: web.Request) -> dict[str, Any]:
        cid = request.match_info["cid"]
        if cid not in self.connectors:
            raise not_found("connector not found")
        return self.connectors[cid]

    async def list_connectors(self, request: web.Request) -> web.Response:
        return self.answer({"items": list(self.connectors.values())})

    async def create(self, request: web.Request) -> web.Response:
        body = request[BODY]
        if (body.get("config") or {}).get("response", {}).get("status") == 99:
            problems = [
                {"path": "$.response.status", "message": "must be between 200 and 599"},
                {"path": "$.steps[0].when", "message": "invalid regex"},
            ]
            return error(422, "invalid_config", "the configuration is invalid", problems=problems)
        cid = self.add_connector(body["name"], body.get("config"))
        return self.answer(self.connectors[cid])

    async def show(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        if cid == "teapot":  # a proxy in the way: not the API's error shape
            return web.Response(status=500, text="kaput\n")
        if cid == "not-json":
            return web.Response(text="<html>hello</html>")
        return self.answer(self.connector(request))

    async def update(self, request: web.Request) -> web.Response:
        c, body = self.connector(request), request[BODY]
        if body["version"] != c["version"]:
            message = f"version {body['version']} is not the current one ({c['version']})"
            return error(409, "stale_version", message)
        return self.answer(self.saved(c["id"], body["config"], body.get("name")))

    async def delete(self, request: web.Request) -> web.Response:
        del self.connectors[self.connector(request)["id"]]
        return web.Response(status=204)

    async def rotate(self, request: web.Request) -> web.Response:
        c = self.connector(request)
        c["url"] = c["url"] + "-rotated"
        return self.answer(c)

    async def list_versions(self, request: web.Request) -> web.Response:
        return self.answer({"items": self.versions[self.connector(request)["id"]]})

    async def restore(self, request: web.Request) -> web.Response:
        c, n = self.connector(request), int(request.match_info["n"])
        old = [v for v in self.versions[c["id"]] if v["version"] == n]
        if not old:
            return error(404, "not_found", f"version {n} not found")
        return self.answer(self.saved(c["id"], old[0]["config"]))

    async def list_events(self, request: web.Request) -> web.Response:
        items = self.events[self.connector(request)["id"]]
        q = request.query
        items = [e for e in items if q.get("status") in (None, e["status"])]
        items = [e for e in items if "before" not in q or e["received_at"] < q["before"]]
        items = [e for e in items if q.get("received_after", "") <= e["received_at"]]
        items = [e for e in items if e["received_at"] < q.get("received_before", "~")]
        for name, value in q.items():  # a search by value: body.<dotted keys>=value
            if name.startswith("body."):
                items = [e for e in items if str(dig(e["event"], name)) == value]
        limit = int(q.get("limit", 50))
        page = items[:limit]
        cursor = page[-1]["received_at"] if len(items) > limit else None
        return self.answer({"items": page, "next_before": cursor})

    def event(self, request: web.Request) -> dict[str, Any]:
        eid = request.match_info["eid"]
        for event in self.events[self.connector(request)["id"]]:
            if event["event_id"] == eid:
                return event
        raise not_found("event not found")

    async def show_event(self, request: web.Request) -> web.Response:
        return self.answer(self.event(request))

    async def replay(self, request: web.Request) -> web.Response:
        c, event = self.connector(request), self.event(request)
        version = (request[BODY] or {}).get("version")
        new = self.add_event(c["id"], replay_of=event["event_id"])
        answer = {"replay_of": event["event_id"], "event_id": new["event_id"]}
        return self.answer(answer | {"version": version or c["version"]})

    async def show_stats(self, request: web.Request) -> web.Response:
        return self.answer(self.stats[self.connector(request)["id"]])

    async def reset_stats(self, request: web.Request) -> web.Response:
        counters = self.stats[self.connector(request)["id"]]
        counters.update({k: 0 for k in counters if k not in ("since", "paused")})
        counters["since"] = stamp(59)
        return self.answer(counters)

    async def pause(self, request: web.Request) -> web.Response:
        c = self.connector(request)
        c["paused"] = self.stats[c["id"]]["paused"] = True
        return self.answer(c)

    async def resume(self, request: web.Request) -> web.Response:
        c = self.connector(request)
        c["paused"] = self.stats[c["id"]]["paused"] = False
        self.stats[c["id"]]["held"] = 0
        return self.answer(c)

    async def bulk_replay(self, request: web.Request) -> web.Response:
        c = self.connector(request)
        # What the CLI sends must be a body the API decodes (unknown fields refused).
        body = msgspec.convert(request[BODY], models.BulkReplay)
        wanted = {"any": None, "failed": "failed", "dead_lettered": "dead_lettered"}
        matched = sum(1 for e in self.events[c["id"]] if wanted[body.status] in (None, e["status"]))
        if body.plan:
            return self.answer({"matched": matched})
        n = len(self.jobs) + 1
        jid = f"job{n}"
        self.jobs[jid] = {
            "id": jid,
            "connector_id": c["id"],
            "state": "running",
            "matched": matched,
            "done": 0,
            "skipped": 0,
            "version": request[BODY].get("version", c["version"]),
            "rate_per_s": 50.0,
            "selection": request[BODY],
            "created_at": stamp(30 + n),
            "finished_at": None,
            "error": None,
        }
        self.answers.append({"id": jid, "matched": matched})
        return web.json_response(self.answers[-1], status=202)

    def job(self, request: web.Request) -> dict[str, Any]:
        if request.match_info["id"] not in self.jobs:
            raise not_found("no such bulk replay")
        return self.jobs[request.match_info["id"]]

    def job_answer(self, job: dict[str, Any]) -> web.Response:
        msgspec.convert(job, models.BulkReplayJob)  # the API's shape
        return self.answer(job)

    async def show_job(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if job["state"] == "running" and not self.stalled:  # one more replayed at each look
            job["done"] = min(job["done"] + 1, job["matched"])
            if job["done"] == job["matched"]:
                job.update(state="done", finished_at=stamp(59))
        return self.job_answer(job)

    async def cancel_job(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if job["state"] == "running":
            job.update(state="cancelled", finished_at=stamp(58))
        return self.job_answer(job)

    async def list_jobs(self, request: web.Request) -> web.Response:
        cid = self.connector(request)["id"]
        jobs = [j for j in reversed(self.jobs.values()) if j["connector_id"] == cid]
        return self.answer({"items": jobs})


def not_found(message: str) -> web.HTTPException:
    """A 404 with the API's error body, for a helper to raise."""
    body = json.dumps({"error": {"code": "not_found", "message": message}})
    return web.HTTPNotFound(text=body, content_type="application/json")


class Served:
    """The fake API served by aiohttp on a loopback port, in a thread with its loop."""

    def __init__(self, fake: FakeApi) -> None:
        self.loop = asyncio.new_event_loop()
        self.running: Running | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.running = self.loop.run_until_complete(serve(fake.app()))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(DEADLINE_S), "the fake API did not start"
        assert self.running is not None
        self.url: str = self.running.url

    def stop(self) -> None:
        if self.running is not None:
            asyncio.run_coroutine_threadsafe(self.running.stop(), self.loop).result(DEADLINE_S)
            self.running = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE_S)
        self.loop.close()


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def served(fake: FakeApi) -> Iterator[Served]:
    server = Served(fake)
    yield server
    if not server.loop.is_closed():
        server.stop()


class Hookline:
    """``hookline ARGS`` in-process; asserts the exit code."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.env: dict[str, str | None] = {
            "HOOKLINE_URL": url,
            "HOOKLINE_ADMIN_TOKEN": TOKEN,
            "HOOKLINE_DATA_DIR": str(data_dir),
        }

    def __call__(
        self,
        *args: str,
        expect: int = 0,
        input: str | None = None,
        **env: str | None,
    ) -> Result:
        result = CliRunner().invoke(app, list(args), env=self.env | env, input=input)
        assert result.exit_code == expect, (
            args,
            result.exit_code,
            result.stdout,
            result.stderr,
            result.exception,
        )
        if expect:
            assert result.stdout == "", "a failed command prints nothing on stdout"
        return result


@pytest.fixture
def hl(served: Served, tmp_path: Path) -> Hookline:
    return Hookline(served.url, tmp_path / "no-data-dir")


# ==================================================================== tables


def test_cells_are_single_lines_of_plain_text() -> None:
    assert cell(None) == "-"
    assert cell({"a": [1]}) == '{"a": [1]}'
    assert cell(["x"]) == '["x"]'
    assert cell(3) == "3"
    assert cell("a\nb\tc\x1b[2J\x9b1m\u202ed\u2028e") == "a b c [2J 1m d e"


@given(st.lists(st.tuples(st.text(), st.text()), max_size=5))
def test_table_has_one_line_per_item_and_no_control_character(rows: list[tuple[str, str]]) -> None:
    items = [{"a": a, "b": b} for a, b in rows]
    lines = table((Column("A", "a"), Column("B", "b")), items).split("\n")
    assert len(lines) == 1 + len(items)
    assert lines[0].split() == ["A", "B"]
    for line, (a, b) in zip(lines[1:], rows, strict=True):
        assert not CONTROL.search(line) and line == line.rstrip()
        assert cell(a).strip() in line and cell(b).strip() in line


def test_columns_align_by_display_width() -> None:
    items: list[dict[str, Any]] = [
        {"id": "c1", "name": "漢字ショップ", "n": 12, "url": "http://a"},
        {"id": "c22", "name": "shop", "n": 3, "url": "http://bb"},
        {"id": "c333", "name": None, "n": 100, "url": "http://ccc"},
    ]
    columns = (Column("ID", "id"), Column("NAME", "name"), Column("N", "n", right=True))
    lines = table((*columns, Column("URL", "url")), items).split("\n")
    starts = {cell_len(line[: line.index("http")]) for line in lines[1:]}
    assert starts == {cell_len(lines[0][: lines[0].index("URL")])}
    ends = set()
    for line, item in zip(lines[1:], items, strict=True):
        number = f" {item['n']} "
        ends.add(cell_len(line[: line.index(number) + len(number) - 1]))
    assert ends == {cell_len(lines[0][: lines[0].index("N ") + 1])}  # numbers right-aligned
    assert lines[3].split()[1] == "-"


def test_pairs_are_label_value_lines_from_dotted_keys() -> None:
    item = {"id": "c1", "request": {"method": "POST"}, "mapping": None}
    text = pairs((("id", "id"), ("method", "request.method"), ("mapping", "mapping.status")), item)
    assert text.split("\n") == ["id       c1", "method   POST", "mapping  -"]


# ==================================================================== commands


def test_connectors_list_table_keeps_values_whole_and_inert(fake: FakeApi, hl: Hookline) -> None:
    long_url = "http://hooks.test/c/" + "x" * 180
    fake.add_connector("shop")
    fake.add_connector("[bold]evil[/bold] :smile:\x1b[2J\nsecond", url=long_url)
    fake.add_connector("漢字")
    fake.connectors["c1"]["version"] = 12
    lines = hl("connectors", "list").stdout.rstrip("\n").split("\n")
    assert lines[0].split() == ["ID", "NAME", "VERSION", "UPDATED", "URL"]
    assert len(lines) == 4 and all(line == line.rstrip() for line in lines)
    assert lines[1].split()[:3] == ["c1", "shop", "12"]
    assert lines[2].split()[-1] == long_url  # at its natural width: never wrapped or cut
    assert "[bold]evil[/bold] :smile: [2J second" in lines[2]  # no markup, no emoji, no ESC
    assert "\x1b" not in "".join(lines)
    version_end = cell_len(lines[0][: lines[0].index("VERSION") + len("VERSION")])
    assert cell_len(lines[1][: lines[1].index(" 12 ") + 3]) == version_end  # right-aligned
    url_start = {cell_len(line[: line.index("http")]) for line in lines[1:]}
    assert url_start == {cell_len(lines[0][: lines[0].index("URL")])}


def test_json_is_the_api_answer_as_is(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("café ☕")
    fake.add_event(cid, error="bad\nthing")
    for args in (
        ("--json", "connectors", "list"),
        ("connectors", "list", "--json"),
        ("connectors", "show", "--json", cid),
        ("events", "list", cid, "--json"),
        ("events", "show", cid, "ev-0001", "--json"),
        ("stats", "show", cid, "--json"),
        ("--json", "connectors", "versions", cid),
    ):
        out = hl(*args).stdout
        assert out == json.dumps(fake.answers[-1], indent=2, ensure_ascii=False) + "\n", args
    assert json.loads(hl("connectors", "delete", cid, "--json").stdout) == {"deleted": cid}


def test_views_of_one_connector_event_and_counters(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop", {"steps": [{"id": "s"}]})
    shown = hl("connectors", "show", cid).stdout
    assert f"url      {fake.connectors[cid]['url']}\n" in shown
    assert shown.split("config:\n")[1] == json.dumps({"steps": [{"id": "s"}]}, indent=2) + "\n"

    steps = [
        {"step_id": "s1", "type": "http", "status": "failed", "duration_ms": 7, "error": "e" * 99},
        {"step_id": "s2", "type": "email", "status": "skipped", "duration_ms": 1234},
    ]
    fake.add_event(cid, "failed", mapping={"status": "mapped"}, execution=steps)
    detail = hl("events", "show", cid, "ev-0001").stdout
    assert "event         ev-0001\n" in detail and "mapping       mapped\n" in detail
    assert "error         -\n" in detail and "source        -\n" in detail
    assert '"body": {\n    "n": 1\n  }' in detail
    execution = detail.split("execution:\n")[1].rstrip("\n").split("\n")
    assert execution[0].split() == ["STEP", "TYPE", "STATUS", "MS", "ERROR"]
    assert execution[1].split() == ["s1", "http", "failed", "7", "e" * 59 + "…"]
    assert execution[2].split() == ["s2", "email", "skipped", "1234", "-"]

    fake.stats[cid]["received"] = 5
    counters = hl("stats", "show", cid).stdout
    assert counters.split("\n")[:2] == ["received    5", "succeeded   0"]
    reset = hl("stats", "reset", cid).stdout
    assert "received    0\n" in reset and f"since       {stamp(59)}\n" in reset

    hl("connectors", "update", cid, "--config", "-", input='{"mapping": {"email": "x"}}')
    versions = hl("connectors", "versions", cid).stdout.rstrip("\n").split("\n")
    assert [line.split() for line in versions] == [
        ["VERSION", "SAVED", "STEPS", "MAPPING"],
        ["2", stamp(1), "0", "yes"],
        ["1", stamp(0), "0", "no"],
    ]


def test_each_command_sends_its_request(fake: FakeApi, hl: Hookline, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"response": {"status": 202}}')
    created = hl("connectors", "create", "shop", "--config", str(config)).stdout
    cid = "c1"
    assert created.split("\n")[0] == "id       c1"
    fake.add_event(cid)

    hl("connectors", "update", cid, "--config", str(config), "--name", "store")
    hl("connectors", "rotate-url", cid, "--grace", "300")
    hl("connectors", "restore", cid, "1")
    hl("events", "list", cid, "--status", "failed", "--limit", "5", "--before", stamp(9))
    hl("events", "replay", cid, "ev-0001", "--version", "2")
    hl("events", "replay", cid, "ev-0001")
    hl("connectors", "delete", cid)
    sent = [(r["method"], r["path"], r["query"], r["body"]) for r in fake.requests]
    base = f"/api/v1/connectors/{cid}"
    assert sent == [
        (
            "POST",
            "/api/v1/connectors",
            {},
            {"name": "shop", "config": {"response": {"status": 202}}},
        ),
        ("GET", base, {}, None),  # the version the update is based on
        ("PUT", base, {}, {"version": 1, "config": {"response": {"status": 202}}, "name": "store"}),
        ("POST", base + "/rotate-url", {}, {"grace_seconds": 300}),
        ("POST", base + "/versions/1/restore", {}, None),
        ("GET", base + "/events", {"status": "failed", "limit": "5", "before": stamp(9)}, None),
        ("POST", base + "/events/ev-0001/replay", {}, {"version": 2}),
        ("POST", base + "/events/ev-0001/replay", {}, None),
        ("DELETE", base, {}, None),
    ]
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}


def test_human_messages(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    fake.add_event(cid)
    url = fake.connectors[cid]["url"]
    rotated = hl("connectors", "rotate-url", cid).stdout
    assert rotated == f"new url: {url}-rotated\n(the old url stops working now)\n"
    graced = hl("connectors", "rotate-url", cid, "--grace", "60").stdout
    assert graced.endswith("(the old url stops working in 60 s)\n")
    assert hl("connectors", "restore", cid, "1").stdout == "restored version 1 as version 2\n"
    replayed = hl("events", "replay", cid, "ev-0001", "--version", "1").stdout
    assert replayed == "replaying ev-0001 as event ev-0002 (version 1)\n"
    assert hl("connectors", "delete", cid).stdout == f"deleted connector {cid}\n"


def test_where_url_and_token_come_from(
    fake: FakeApi, served: Served, hl: Hookline, tmp_path: Path
) -> None:
    fake.add_connector("shop")
    closed = f"http://127.0.0.1:{free_port()}"
    # --url beats HOOKLINE_URL, the command's own --url beats the one before it
    assert "c1" in hl("--url", served.url, "connectors", "list", HOOKLINE_URL=closed).stdout
    hl("--url", closed, "connectors", "list", "--url", served.url)
    hl("--url", served.url, "connectors", "list", "--url", closed, expect=6)
    # --token beats HOOKLINE_ADMIN_TOKEN
    hl("connectors", "list", "--token", TOKEN, HOOKLINE_ADMIN_TOKEN="wrong")
    hl("--token", "wrong", "connectors", "list", expect=4)
    # no token given: the data dir's admin-token file
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin-token").write_text(TOKEN + "\n")
    hl("connectors", "list", HOOKLINE_ADMIN_TOKEN=None, HOOKLINE_DATA_DIR=str(data))


def test_default_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKLINE_URL", raising=False)
    monkeypatch.setenv("HOOKLINE_ADMIN_TOKEN", TOKEN)
    assert open_session(Globals()).api.base == "http://127.0.0.1:8080"
    monkeypatch.setenv("HOOKLINE_URL", "http://config.test:9/")
    assert open_session(Globals()).api.base == "http://config.test:9"
    assert open_session(Globals(url="http://x.test")).api.base == "http://x.test"


# ==================================================================== exit codes


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (("connectors", "show", "nope"), 3, "hookline: connector not found (404 not_found)\n"),
        (("events", "show", "c1", "nope"), 3, "hookline: event not found (404 not_found)\n"),
        (("events", "replay", "c1", "nope", "--version", "1"), 3, "event not found"),
        (("connectors", "restore", "c1", "7"), 3, "version 7 not found (404 not_found)"),
        (("connectors", "list", "--token", "wrong"), 4, "Bearer admin token is required (401"),
        (
            ("connectors", "update", "c1", "--config", "-", "--version", "2"),
            5,
            "hookline: version 2 is not the current one (1) (409 stale_version)\n",
        ),
        (("connectors", "show", "teapot"), 1, "hookline: kaput (500)\n"),
        (("connectors", "show", "not-json"), 1, "GET /api/v1/connectors/not-json: the answer"),
        (("connectors", "frobnicate"), 2, "No such command"),
        (("connectors", "restore", "c1", "one"), 2, "Invalid value for 'N'"),
        (("connectors", "restore", "c1", "0"), 2, "Invalid value"),
        (("connectors", "update", "c1"), 2, "Missing option '--config'"),
        (("connectors", "create", "x", "--config", "/no/such.json"), 2, "hookline: cannot read"),
        (("connectors", "update", "c1", "--config", "-"), 2, "hookline: - is not JSON"),
        (("events", "tail", "c1", "--interval", "0"), 2, "Invalid value"),
        (("events", "tail", "c1", "--interval", "3601"), 2, "Invalid value"),
        (("events", "list", "c1", "--status", "lost"), 2, "Invalid value"),
        (("events", "list", "c1", "--limit", "0"), 2, "Invalid value"),
        (("stats", "show"), 2, "Missing argument"),
        (("connectors",), 2, "Usage:"),
        ((), 2, "Usage:"),
    ],
)
def test_exit_codes(
    fake: FakeApi, hl: Hookline, args: tuple[str, ...], code: int, stderr: str
) -> None:
    fake.add_connector("shop")
    stdin = "{}" if "--version" in args else "not json"
    result = hl(*args, expect=code, input=stdin)
    assert stderr in result.stderr, result.stderr
    if code != 2:
        assert result.stderr.startswith("hookline: ")


def test_invalid_config_lists_every_problem(fake: FakeApi, hl: Hookline) -> None:
    refused = hl(
        "connectors",
        "create",
        "bad",
        "--config",
        "-",
        expect=5,
        input='{"response": {"status": 99}}',
    )
    assert refused.stderr.split("\n") == [
        "hookline: the configuration is invalid (422 invalid_config)",
        "  $.response.status: must be between 200 and 599",
        "  $.steps[0].when: invalid regex",
        "",
    ]
    assert fake.connectors == {}


def test_no_token_anywhere(hl: Hookline) -> None:
    result = hl("connectors", "list", expect=4, HOOKLINE_ADMIN_TOKEN=None)
    assert result.stderr.startswith("hookline: no admin token: pass --token")


def test_nothing_listening(served: Served, hl: Hookline) -> None:
    served.stop()
    result = hl("connectors", "list", expect=6)
    assert result.stderr.startswith(f"hookline: cannot connect to {hl.env['HOOKLINE_URL']}: ")


# ==================================================================== tail


def test_tail_prints_the_latest_oldest_first(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    for _ in range(5):
        fake.add_event(cid)
    lines = hl("events", "tail", cid, "--limit", "3").stdout.rstrip("\n").split("\n")
    assert lines[0].split() == ["EVENT", "RECEIVED", "STATUS", "VERSION", "ERROR"]
    assert [line.split()[0] for line in lines[1:]] == ["ev-0003", "ev-0004", "ev-0005"]
    as_json = hl("events", "tail", cid, "--limit", "2", "--json").stdout.splitlines()
    assert [json.loads(line)["event_id"] for line in as_json] == ["ev-0004", "ev-0005"]
    assert hl("events", "tail", cid, "--status", "failed").stdout == ""


class Process:
    """``hookline ARGS`` as a subprocess; stdout and stderr read line by line."""

    def __init__(
        self, env: dict[str, str | None], *args: str, stdout: int = subprocess.PIPE
    ) -> None:
        # as in a shell: no $HOOKLINE_* but the test's, stdout buffered
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HOOKLINE_") and k != "PYTHONUNBUFFERED"
        }
        environ |= {k: v for k, v in env.items() if v is not None}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.config.cli", *args],
            cwd=ROOT,
            env=environ,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
            if stream is not None
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for(self, what: Callable[[], bool], description: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if what():
                return
            assert self.proc.poll() is None, (self.proc.returncode, self.out, self.err)
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {description}: {self.out!r} {self.err!r}")

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.out)

    def finish(self) -> int:
        """The exit code, once the process has ended and all it printed is read."""
        code = self.proc.wait(DEADLINE_S)
        for reader in self.readers:
            reader.join(DEADLINE_S)
        return code

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.finish()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE_S)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.kill()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_tail_follow_prints_new_and_changed_events_until_a_signal(
    fake: FakeApi, hl: Hookline, processes: list[Process], signum: int
) -> None:
    cid = fake.add_connector("shop")
    first = fake.add_event(cid)
    tail = Process(hl.env, "events", "tail", cid, "--follow", "--interval", "0.05")
    processes.append(tail)
    tail.wait_for(lambda: tail.printed("ev-0001"), "the first event")
    fake.add_event(cid, "failed", error="x" * 80)
    tail.wait_for(lambda: tail.printed("ev-0002"), "the new event")
    first["status"] = "succeeded"
    tail.wait_for(lambda: len(tail.out) == 4, "the first event again, now succeeded")
    assert tail.stop(signum) == 0, tail.err
    assert not any("Traceback" in line for line in tail.err), tail.err
    header, *rows = [line.rstrip("\n") for line in tail.out]
    assert header.split() == ["EVENT", "RECEIVED", "STATUS", "VERSION", "ERROR"]
    assert [row.split()[:3] for row in rows] == [
        ["ev-0001", stamp(1), "received"],
        ["ev-0002", stamp(2), "failed"],
        ["ev-0001", stamp(1), "succeeded"],
    ]
    version_end = header.index("VERSION") + len("VERSION")
    assert {row[version_end - 1] for row in rows} == {"1"}, rows  # one column for all rows
    assert rows[1].endswith("x" * 59 + "…")


def test_tail_follow_rides_out_a_lost_connection(
    fake: FakeApi, served: Served, hl: Hookline, processes: list[Process]
) -> None:
    cid = fake.add_connector("shop")
    fake.add_event(cid)
    tail = Process(hl.env, "events", "tail", cid, "-f", "--interval", "0.05", "--json")
    processes.append(tail)
    tail.wait_for(lambda: tail.printed('"ev-0001"'), "the first event")
    served.stop()
    tail.wait_for(lambda: any("retrying" in line for line in tail.err), "a retry notice")
    assert tail.err[0].startswith(f"hookline: cannot connect to {served.url}: ")
    assert tail.proc.poll() is None, "--follow keeps going"
    assert tail.stop(signal.SIGINT) == 0
    assert json.loads(tail.out[0])["event_id"] == "ev-0001"


def test_tail_follow_stops_on_an_api_error(
    fake: FakeApi, hl: Hookline, processes: list[Process]
) -> None:
    cid = fake.add_connector("shop")
    tail = Process(hl.env, "events", "tail", cid, "-f", "--interval", "0.05")
    processes.append(tail)
    tail.wait_for(lambda: len(fake.requests) >= 2, "a poll")
    del fake.connectors[cid]
    assert tail.finish() == 3
    assert "connector not found (404 not_found)" in "".join(tail.err)


# ======================================================== day 2: pause, search, bulk replay


def test_pause_and_resume(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    paused = hl("connectors", "pause", cid).stdout
    assert paused == f"paused shop ({cid}): events are stored and answered; steps wait\n"
    assert fake.connectors[cid]["paused"] is True
    assert "paused   True\n" in hl("connectors", "show", cid).stdout
    fake.stats[cid]["held"] = 3
    counters = hl("stats", "show", cid).stdout.split("\n")
    assert "paused      True" in counters and "held        3" in counters
    resumed = json.loads(hl("connectors", "resume", cid, "--json").stdout)
    assert resumed == fake.answers[-1] and resumed["paused"] is False
    assert hl("connectors", "resume", cid).stdout == (
        f"resumed shop ({cid}): held events run in arrival order\n"
    )
    assert "paused      False" in hl("stats", "show", cid).stdout.split("\n")
    sent = [(r["method"], r["path"], r["body"]) for r in fake.requests if r["method"] == "POST"]
    base = f"/api/v1/connectors/{cid}"
    assert sent == [
        ("POST", base + "/pause", None),
        ("POST", base + "/resume", None),
        ("POST", base + "/resume", None),
    ]
    hl("connectors", "pause", "nope", expect=3)


def test_events_list_searches_by_value_and_time(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    for n, region in enumerate(["eu", "us", "eu", "eu", "us"], 1):
        fake.add_event(cid, event={"body": {"n": n, "customer": {"region": region}}})
    listed = hl(
        "events", "list", cid,
        "--where", "body.customer.region=eu",
        "--after", stamp(2),
        "--before-time", stamp(4),
    ).stdout.rstrip("\n").split("\n")  # fmt: skip
    assert [line.split()[0] for line in listed] == ["EVENT", "ev-0003"]
    assert fake.requests[-1]["query"] == {
        "limit": "50",
        "received_after": stamp(2),
        "received_before": stamp(4),
        "body.customer.region": "eu",
    }
    # every parameter as given: a header's case, list positions, a value with "=", a
    # name given twice (both must hold, as the API says), the new status
    hl(
        "events", "list", cid,
        "--status", "dead_lettered",
        "--where", "headers.X-Source=s1",
        "--where", "body.items[0].sku=a=b",
        "--where", "custom_variables.tag=x",
        "--where", "custom_variables.tag=y",
        "--before", stamp(9),
    )  # fmt: skip
    assert fake.requests[-1]["query"] == {
        "status": "dead_lettered",
        "limit": "50",
        "before": stamp(9),
        "headers.X-Source": "s1",
        "body.items[0].sku": "a=b",
        "custom_variables.tag": ["x", "y"],
    }


def test_events_list_says_how_to_get_the_next_page(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    for _ in range(5):
        fake.add_event(cid)
    first = hl("events", "list", cid, "--limit", "2")
    assert [line.split()[0] for line in first.stdout.splitlines()[1:]] == ["ev-0005", "ev-0004"]
    assert first.stderr == f"next page: --before {stamp(4)}\n"
    cursor = first.stderr.split("--before ")[1].strip()
    second = hl("events", "list", cid, "--limit", "2", "--before", cursor)
    assert [line.split()[0] for line in second.stdout.splitlines()[1:]] == ["ev-0003", "ev-0002"]
    last = hl("events", "list", cid, "--limit", "2", "--before", stamp(2))
    assert [line.split()[0] for line in last.stdout.splitlines()[1:]] == ["ev-0001"]
    assert last.stderr == ""
    as_json = hl("events", "list", cid, "--limit", "2", "--json")
    assert json.loads(as_json.stdout)["next_before"] == stamp(4)
    assert as_json.stderr == ""  # the cursor is in the JSON; nothing else is printed


def test_where_nests_as_the_bulk_replay_selection() -> None:
    from services.config.cli.selection import nested, parse_where

    def of(*texts: str) -> dict[str, Any]:
        return nested([parse_where(t) for t in texts])

    assert of() == {}
    assert of("body.customer.region=eu") == {"body": {"customer": {"region": "eu"}}}
    assert of("headers.X-Source=s1", "custom_variables.v=1") == {
        "headers": {"x-source": "s1"},  # header names are case-insensitive
        "custom_variables": {"v": "1"},
    }
    assert of("body.a.b=1", "body.a.c=2", "body.d=3") == {
        "body": {"a": {"b": "1", "c": "2"}, "d": "3"}
    }
    # the same path again: any of its values (given once each)
    assert of("body.tier=0", "body.tier=1", "body.tier=0", "body.tier=2") == {
        "body": {"tier": ["0", "1", "2"]}
    }
    assert of("headers.X-A=1", "headers.x-a=2") == {"headers": {"x-a": ["1", "2"]}}
    # the log's paths: list positions ignored, quoted keys, "=" in a value
    assert of("body.items[0].sku=A", 'body.["a.b"].c=x=y') == {
        "body": {"items": {"sku": "A"}, "a.b": {"c": "x=y"}}
    }
    for clash in (("body.a=1", "body.a.b=2"), ("body.a.b=2", "body.a=1")):
        with pytest.raises(CliError) as raised:
            of(*clash)
        assert raised.value.code == 2 and "body.a is given both a value and a path" in str(
            raised.value
        )


def test_bulk_replay_plan_counts_and_sends_the_selection(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    for status in ("failed", "succeeded", "failed", "failed"):
        fake.add_event(cid, status)
    assert hl("bulk-replay", "start", cid, "--plan").stdout == "3 events match\n"
    assert fake.requests[-1]["body"] == {"status": "failed", "plan": True}
    assert hl("bulk-replay", "start", cid, "--plan", "--status", "any").stdout == (
        "4 events match\n"
    )
    fake.add_event(cid, "dead_lettered")
    one = hl("bulk-replay", "start", cid, "--plan", "--status", "dead_lettered").stdout
    assert one == "1 event matches\n"
    hl(
        "bulk-replay", "start", cid, "--plan",
        "--after", stamp(1),
        "--before-time", stamp(9),
        "--where", "body.customer.region=eu",
        "--where", "body.customer.region=us",
        "--where", "body.order.id=42",
        "--where", "headers.x-source=s1",
        "--where", "custom_variables.value=day1",
        "--version", "2",
    )  # fmt: skip
    assert fake.requests[-1]["path"] == f"/api/v1/connectors/{cid}/bulk-replay"
    assert fake.requests[-1]["body"] == {
        "status": "failed",
        "received_after": stamp(1),
        "received_before": stamp(9),
        "body": {"customer": {"region": ["eu", "us"]}, "order": {"id": "42"}},
        "headers": {"x-source": "s1"},
        "custom_variables": {"value": "day1"},
        "version": 2,
        "plan": True,
    }
    assert fake.jobs == {}  # only counted


def test_bulk_replay_start_show_cancel_list(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    for _ in range(3):
        fake.add_event(cid, "failed")
    started = hl("bulk-replay", "start", cid, "--where", "body.n=1").stdout
    assert started == "bulk replay job1: 3 events, running\n"
    assert fake.requests[-1]["body"] == {"status": "failed", "body": {"n": "1"}, "plan": False}
    shown = hl("bulk-replay", "show", "job1").stdout.rstrip("\n").split("\n")
    assert [line.split(None, 1) for line in shown] == [
        ["id", "job1"],
        ["connector", cid],
        ["state", "running"],
        ["done", "1/3"],
        ["skipped", "0"],
        ["version", "1"],
        ["rate", "50/s"],
        ["created", stamp(31)],
        ["finished", "-"],
        ["error", "-"],
        ["selection", '{"status": "failed", "body": {"n": "1"}, "plan": false}'],
    ]
    cancelled = hl("bulk-replay", "cancel", "job1").stdout
    assert cancelled == "cancelled bulk replay job1: 1/3 replayed\n"
    assert fake.jobs["job1"]["state"] == "cancelled"
    assert "state      cancelled\n" in hl("bulk-replay", "show", "job1").stdout
    again = hl("bulk-replay", "start", cid, "--json").stdout
    assert json.loads(again) == {"id": "job2", "matched": 3} == fake.answers[-1]
    fake.jobs["job2"].update(state="done", done=3)
    assert hl("bulk-replay", "cancel", "job2").stdout == (
        "bulk replay job2 was already done: 3/3 replayed\n"
    )
    listed = hl("bulk-replay", "list", cid).stdout.rstrip("\n").split("\n")
    assert [line.split() for line in listed] == [
        ["ID", "STATE", "DONE", "MATCHED", "CREATED"],
        ["job2", "done", "3", "3", stamp(32)],
        ["job1", "cancelled", "1", "3", stamp(31)],
    ]
    assert [(r["method"], r["path"]) for r in fake.requests[-7:]] == [
        ("POST", f"/api/v1/connectors/{cid}/bulk-replay"),
        ("GET", "/api/v1/bulk-replays/job1"),
        ("DELETE", "/api/v1/bulk-replays/job1"),
        ("GET", "/api/v1/bulk-replays/job1"),
        ("POST", f"/api/v1/connectors/{cid}/bulk-replay"),
        ("DELETE", "/api/v1/bulk-replays/job2"),
        ("GET", f"/api/v1/connectors/{cid}/bulk-replays"),
    ]
    missing = hl("bulk-replay", "show", "job1/../x", expect=3)  # one path segment, escaped
    assert missing.stderr == "hookline: no such bulk replay (404 not_found)\n"


def test_bulk_replay_start_wait_prints_the_progress(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    for _ in range(3):
        fake.add_event(cid, "failed")
    waited = hl("bulk-replay", "start", cid, "--wait", "--interval", "0.05").stdout
    assert waited.split("\n") == [
        "bulk replay job1: 3 events, running",
        "running: 1/3 replayed",
        "running: 2/3 replayed",
        "done: 3/3 replayed",
        "",
    ]
    as_json = hl("bulk-replay", "start", cid, "--wait", "--interval", "0.05", "--json").stdout
    final = json.loads(as_json)  # the job as it ended, alone
    assert final == fake.answers[-1] and final["state"] == "done" and final["done"] == 3


def test_bulk_replay_wait_ends_with_a_cancel(
    fake: FakeApi, hl: Hookline, processes: list[Process]
) -> None:
    cid = fake.add_connector("shop")
    fake.add_event(cid, "failed")
    fake.stalled = True
    wait = Process(hl.env, "bulk-replay", "start", cid, "--wait", "--interval", "0.05")
    processes.append(wait)
    wait.wait_for(lambda: wait.printed("running: 0/1 replayed"), "the first progress")
    assert hl("bulk-replay", "cancel", "job1").stdout.startswith("cancelled bulk replay job1")
    assert wait.finish() == 0, wait.err
    assert [line.rstrip("\n") for line in wait.out] == [
        "bulk replay job1: 1 event, running",
        "running: 0/1 replayed",
        "cancelled: 0/1 replayed",
    ]


def test_bulk_replay_wait_interrupted_leaves_the_job_running(
    fake: FakeApi, hl: Hookline, processes: list[Process]
) -> None:
    cid = fake.add_connector("shop")
    fake.add_event(cid, "failed")
    fake.stalled = True
    wait = Process(hl.env, "bulk-replay", "start", cid, "--wait", "--interval", "0.05")
    processes.append(wait)
    wait.wait_for(lambda: wait.printed("running: 0/1 replayed"), "the first progress")
    assert wait.stop(signal.SIGINT) == 0
    assert "".join(wait.err) == (
        "hookline: bulk replay job1 goes on "
        "(hookline bulk-replay show job1; hookline bulk-replay cancel job1)\n"
    )
    assert fake.jobs["job1"]["state"] == "running"


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (("events", "list", "c1", "--where", "body.x"), "'body.x': give FIELD=VALUE"),
        (("events", "list", "c1", "--where", "status=failed"), "FIELD is body.<path>, headers."),
        (("events", "list", "c1", "--where", "body=1"), "FIELD is body.<path>"),
        (("events", "list", "c1", "--where", "query.x=1"), "FIELD is body.<path>"),
        (("events", "list", "c1", "--where", "body.a[=1"), "invalid attribute path 'a['"),
        (("bulk-replay", "start", "c1", "--where", "x-source=s1"), "FIELD is body.<path>"),
        (("bulk-replay", "start", "c1", "--where", "headers.x"), "give FIELD=VALUE"),
        (
            ("bulk-replay", "start", "c1", "--where", "body.a=1", "--where", "body.a.b=2"),
            "hookline: --where body.a.b=2: body.a is given both a value and a path below it\n",
        ),
        (("bulk-replay", "start", "c1", "--plan", "--wait"), "hookline: --plan only counts"),
        (("bulk-replay", "start", "c1", "--status", "succeeded"), "Invalid value for '--status'"),
        (("bulk-replay", "start", "c1", "--version", "0"), "Invalid value for '--version'"),
        (("bulk-replay", "start", "c1", "--interval", "0"), "Invalid value for '--interval'"),
        (("bulk-replay", "show"), "Missing argument 'JOB_ID'"),
        (("bulk-replay",), "Usage:"),
    ],
)
def test_day2_usage_errors_send_nothing(
    fake: FakeApi, hl: Hookline, args: tuple[str, ...], stderr: str
) -> None:
    fake.add_connector("shop")
    result = hl(*args, expect=2)
    assert stderr in result.stderr, result.stderr
    assert fake.requests == []


def test_day2_json_is_the_api_answer_as_is(fake: FakeApi, hl: Hookline) -> None:
    cid = fake.add_connector("shop")
    fake.add_event(cid, "failed")
    for args in (
        ("connectors", "pause", cid, "--json"),
        ("--json", "connectors", "resume", cid),
        ("bulk-replay", "start", cid, "--plan", "--json"),
        ("bulk-replay", "start", cid, "--json"),
        ("bulk-replay", "show", "job1", "--json"),
        ("bulk-replay", "list", cid, "--json"),
        ("bulk-replay", "cancel", "job1", "--json"),
    ):
        out = hl(*args).stdout
        assert out == json.dumps(fake.answers[-1], indent=2, ensure_ascii=False) + "\n", args


# ==================================================================== the process


@pytest.mark.parametrize("unbuffered", [None, "1"])
def test_a_closed_stdout_ends_quietly(fake: FakeApi, hl: Hookline, unbuffered: str | None) -> None:
    cid = fake.add_connector("shop")
    for _ in range(3):
        fake.add_event(cid)
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has gone: every write fails with EPIPE
    try:
        env = hl.env | {"PYTHONUNBUFFERED": unbuffered}  # EPIPE at the flush, or at print
        process = Process(env, "events", "list", cid, stdout=writer)
    finally:
        os.close(writer)
    assert process.finish() == 0, process.err
    assert len(fake.requests) == 1  # it did run the command
    assert not any("Error" in line or "Traceback" in line for line in process.err), process.err


def test_the_cli_imports_no_server_code() -> None:
    """It shares the API's models (msgspec structs over the pure domain), nothing else of
    the server: no web framework, broker or database driver, no adapter, no handler."""
    probe = (
        "import sys, services.config.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp', 'nats', 'pymongo', 'bson') "
        "or m.startswith(('libs.infra', 'libs.runtime', 'services.config.app', "
        "'services.config.openapi', 'services.config.decoding'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    shared = subprocess.run(
        [sys.executable, "-c", "import sys, services.config.cli; "
         "print('services.config.models' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shared.stdout.strip() == "True"


def test_help_keeps_the_options_and_exit_codes(hl: Hookline) -> None:
    root = hl("--help").stdout
    for text in ("connectors", "events", "stats", "bulk-replay", "--url", "--token", "--json"):
        assert text in root
    assert "exit codes" in root
    start = hl("bulk-replay", "start", "-h").stdout
    for text in ("--status", "--after", "--before-time", "--where", "--version", "--plan"):
        assert text in start
    tail = hl("events", "tail", "-h").stdout
    for text in ("--follow", "-f", "--interval", "--limit", "--status", "--json"):
        assert text in tail


def test_the_cli_shows_the_api_models_fields() -> None:
    """The CLI's tables name fields of the API's own models (checked when they are
    declared) and its status choices are the API's."""
    from services.config import models
    from services.config.cli import bulk_replay as cli_bulk
    from services.config.cli import events as cli_events
    from services.config.cli.output import Column, of_model

    assert {s.value for s in cli_events.Status} == set(models.EVENT_STATUSES)
    bulk_status = typing.get_type_hints(models.BulkReplay, include_extras=True)["status"]
    assert {s.value for s in cli_bulk.Status} == set(
        typing.get_args(typing.get_args(bulk_status)[0])
    )
    with pytest.raises(TypeError, match="not a field of the API's Stats"):
        of_model(models.Stats, Column("X", "no_such_counter"))
    assert of_model(models.Stats, ("got", "received")) == (("got", "received"),)
