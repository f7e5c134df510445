"""``hookline``: the operator's command-line client of the config API.

An HTTP client only (standard library, no Hookline imports), so it runs anywhere the
config API is reachable::

    hookline connectors create shop --config shop.json
    hookline connectors list
    hookline events tail <connector id> --follow
    hookline stats show <connector id> --json

The URL comes from ``--url`` or ``HOOKLINE_URL`` (default http://127.0.0.1:8080), the
admin token from ``--token``, ``HOOKLINE_ADMIN_TOKEN`` or the ``admin-token`` file of
``HOOKLINE_DATA_DIR`` (default ./var).  Human-readable tables by default, ``--json``
for scripts.  Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 unauthorized,
5 conflict or invalid input (the problems are listed), 6 cannot connect.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0
TAIL_PAGE = 100  # events fetched per poll of `events tail --follow`
TAIL_PAGES = 10  # at most this many pages per poll when many events arrived

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # kept out of table cells

OK, OTHER, USAGE, NOT_FOUND, AUTH, INVALID, CONNECT = 0, 1, 2, 3, 4, 5, 6
EXIT_BY_STATUS = {400: INVALID, 401: AUTH, 403: AUTH, 404: NOT_FOUND, 409: INVALID, 422: INVALID}


class CliError(Exception):
    """Ends the command: ``message`` (and ``problems``) on stderr, exit ``code``."""

    def __init__(
        self, code: int, message: str, problems: Sequence[dict[str, Any]] = (), status: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = list(problems)
        self.status = status


# ==================================================================== HTTP


class Client:
    def __init__(self, url: str, token: str, timeout: float = TIMEOUT_S) -> None:
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        url = self.base + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(CONNECT, f"cannot connect to {self.base}: {reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(OTHER, f"{method} {path}: the answer is not JSON") from None


def _api_error(status: int, raw: bytes) -> CliError:
    code, message, problems = "", "", []
    try:
        error = json.loads(raw)["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
        problems = [p for p in error.get("problems") or [] if isinstance(p, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        message = raw.decode("utf-8", "replace").strip()[:500]
    text = f"{message or 'HTTP ' + str(status)}"
    if code:
        text += f" ({status} {code})"
    else:
        text += f" ({status})"
    return CliError(EXIT_BY_STATUS.get(status, OTHER), text, problems, status)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _connector(cid: str) -> str:
    return f"/api/v1/connectors/{_segment(cid)}"


# ==================================================================== output


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return CONTROL.sub(" ", value)
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns, two spaces apart; ``-`` for a missing value."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    rows = list(items)
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in rows)


def _short(text: Any, limit: int = 60) -> Any:
    if isinstance(text, str) and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(human(data))


# ==================================================================== connectors


def _connector_text(c: dict[str, Any], with_config: bool = False) -> str:
    text = pairs(
        [
            ("id", c.get("id")),
            ("name", c.get("name")),
            ("url", c.get("url")),
            ("version", c.get("version")),
            ("created", c.get("created_at")),
            ("updated", c.get("updated_at")),
        ]
    )
    if with_config:
        text += "\nconfig:\n" + json.dumps(c.get("config"), indent=2, ensure_ascii=False)
    return text


def _read_config(name: str) -> Any:
    """The configuration in FILE (``-``: stdin): the config object itself, JSON."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(USAGE, f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(USAGE, f"{name} is not JSON: {exc}") from None


def connectors_create(api: Client, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"name": args.name}
    if args.config:
        body["config"] = _read_config(args.config)
    created = api.call("POST", "/api/v1/connectors", body)
    emit(args, created, _connector_text)


def connectors_list(api: Client, args: argparse.Namespace) -> None:
    data = api.call("GET", "/api/v1/connectors")
    emit(
        args,
        data,
        lambda d: table(
            ("ID", "NAME", "VERSION", "UPDATED", "URL"),
            [(c["id"], c["name"], c["version"], c.get("updated_at"), c["url"]) for c in d["items"]],
        ),
    )


def connectors_show(api: Client, args: argparse.Namespace) -> None:
    emit(args, api.call("GET", _connector(args.id)), lambda c: _connector_text(c, True))


def connectors_update(api: Client, args: argparse.Namespace) -> None:
    """Save a new configuration, based on the version read just before (or --version)."""
    version = args.version
    if version is None:
        version = api.call("GET", _connector(args.id))["version"]
    body: dict[str, Any] = {"version": version, "config": _read_config(args.config)}
    if args.name:
        body["name"] = args.name
    emit(args, api.call("PUT", _connector(args.id), body), _connector_text)


def connectors_delete(api: Client, args: argparse.Namespace) -> None:
    api.call("DELETE", _connector(args.id))
    emit(args, {"deleted": args.id}, lambda d: f"deleted connector {d['deleted']}")


def connectors_rotate(api: Client, args: argparse.Namespace) -> None:
    body = {"grace_seconds": args.grace} if args.grace is not None else None
    rotated = api.call("POST", _connector(args.id) + "/rotate-url", body)

    def human(c: dict[str, Any]) -> str:
        grace = f"in {args.grace} s" if args.grace else "now"
        return f"new url: {c['url']}\n(the old url stops working {grace})"

    emit(args, rotated, human)


def connectors_versions(api: Client, args: argparse.Namespace) -> None:
    data = api.call("GET", _connector(args.id) + "/versions")
    emit(
        args,
        data,
        lambda d: table(
            ("VERSION", "SAVED", "STEPS", "MAPPING"),
            [
                (
                    v["version"],
                    v.get("saved_at"),
                    len((v.get("config") or {}).get("steps") or []),
                    "yes" if (v.get("config") or {}).get("mapping") else "no",
                )
                for v in d["items"]
            ],
        ),
    )


def connectors_restore(api: Client, args: argparse.Namespace) -> None:
    saved = api.call("POST", f"{_connector(args.id)}/versions/{args.n}/restore")
    emit(args, saved, lambda c: f"restored version {args.n} as version {c['version']}")


# ==================================================================== events


EVENT_HEADERS = ("EVENT", "RECEIVED", "STATUS", "VERSION", "ERROR")


def _event_row(e: dict[str, Any]) -> tuple[Any, ...]:
    return (
        e.get("event_id"),
        e.get("received_at"),
        e.get("status"),
        e.get("connector_version"),
        _short(e.get("error")),
    )


def events_list(api: Client, args: argparse.Namespace) -> None:
    query = {"status": args.status, "limit": args.limit, "before": args.before}
    data = api.call("GET", _connector(args.id) + "/events", query=query)
    emit(args, data, lambda d: table(EVENT_HEADERS, [_event_row(e) for e in d["items"]]))


def _event_text(e: dict[str, Any]) -> str:
    request = e.get("request") or {}
    parts = [
        pairs(
            [
                ("event", e.get("event_id")),
                ("received", e.get("received_at")),
                ("status", e.get("status")),
                ("version", e.get("connector_version")),
                ("error", e.get("error")),
                ("replay of", e.get("replay_of")),
                ("method", request.get("method")),
                ("content type", request.get("content_type")),
                ("source", request.get("source_ip")),
                ("mapping", (e.get("mapping") or {}).get("status")),
            ]
        ),
        "event:\n" + json.dumps(e.get("event"), indent=2, ensure_ascii=False),
    ]
    steps = e.get("execution") or []
    if steps:
        parts.append(
            "execution:\n"
            + table(
                ("STEP", "TYPE", "STATUS", "MS", "ERROR"),
                [
                    (
                        s.get("step_id"),
                        s.get("type"),
                        s.get("status"),
                        s.get("duration_ms"),
                        _short(s.get("error")),
                    )
                    for s in steps
                ],
            )
        )
    return "\n".join(parts)


def events_show(api: Client, args: argparse.Namespace) -> None:
    data = api.call("GET", f"{_connector(args.id)}/events/{_segment(args.event_id)}")
    emit(args, data, _event_text)


def events_replay(api: Client, args: argparse.Namespace) -> None:
    body = {"version": args.version} if args.version is not None else None
    path = f"{_connector(args.id)}/events/{_segment(args.event_id)}/replay"
    data = api.call("POST", path, body)
    emit(
        args,
        data,
        lambda d: f"replaying {d['replay_of']} as event {d['event_id']} (version {d['version']})",
    )


class Tail:
    """Prints events oldest first, then (``--follow``) every new event and every change
    of an event's status, polling the newest pages of the log."""

    def __init__(self, api: Client, args: argparse.Namespace) -> None:
        self.api = api
        self.args = args
        self.path = _connector(args.id) + "/events"
        self.seen: dict[str, Any] = {}  # event id -> last printed status
        self.header = False

    def page(self, limit: int, before: str | None = None) -> tuple[list[dict[str, Any]], Any]:
        """Events newest first, and the cursor of the next (older) page, if any."""
        query = {"status": self.args.status, "limit": limit, "before": before}
        data = self.api.call("GET", self.path, query=query)
        return data["items"], data.get("next_before")

    def fresh(self) -> list[dict[str, Any]]:
        """New or changed events, newest first; more pages while a whole page is new."""
        items, cursor = self.page(TAIL_PAGE)
        out = list(items)
        pages = 1
        while cursor and pages < TAIL_PAGES and not any(e["event_id"] in self.seen for e in items):
            items, cursor = self.page(TAIL_PAGE, before=cursor)
            out.extend(items)
            pages += 1
        return [e for e in out if self.seen.get(e["event_id"], object()) != e.get("status")]

    def show(self, newest_first: list[dict[str, Any]]) -> None:
        for event in reversed(newest_first):
            self.seen[event["event_id"]] = event.get("status")
            if self.args.json:
                print(json.dumps(event, ensure_ascii=False), flush=True)
                continue
            line = table(EVENT_HEADERS, [_event_row(event)]).split("\n")
            if not self.header:
                print(line[0], flush=True)
                self.header = True
            print(line[1], flush=True)

    def run(self) -> None:
        self.show(self.page(self.args.limit)[0])
        if not self.args.follow:
            return
        while True:
            time.sleep(self.args.interval)
            try:
                changed = self.fresh()
            except CliError as exc:
                if exc.code != CONNECT:
                    raise
                print(f"hookline: {exc.message}; retrying", file=sys.stderr, flush=True)
                continue
            self.show(changed)
            if len(self.seen) > 10 * TAIL_PAGE * TAIL_PAGES:  # forget the oldest
                for key in list(self.seen)[: len(self.seen) // 2]:
                    del self.seen[key]


def events_tail(api: Client, args: argparse.Namespace) -> None:
    Tail(api, args).run()


# ==================================================================== stats


def _stats_text(s: dict[str, Any]) -> str:
    keys = ("received", "succeeded", "failed", "duplicates", "rejected", "since")
    return pairs([(k, s.get(k)) for k in keys])


def stats_show(api: Client, args: argparse.Namespace) -> None:
    emit(args, api.call("GET", _connector(args.id) + "/stats"), _stats_text)


def stats_reset(api: Client, args: argparse.Namespace) -> None:
    emit(args, api.call("POST", _connector(args.id) + "/stats/reset"), _stats_text)


# ==================================================================== arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1: {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.05 and 3600 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    # Global options work before or after the command (`hookline --json connectors list`
    # or `hookline connectors list --json`); on subcommands they default to "not given".
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"config API URL [$HOOKLINE_URL or {DEFAULT_URL}]"
    )
    common.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="admin token [$HOOKLINE_ADMIN_TOKEN or $HOOKLINE_DATA_DIR/admin-token]",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print raw JSON"
    )

    root = argparse.ArgumentParser(
        prog="hookline",
        description="Command-line client of the Hookline config API.",
        epilog="exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 unauthorized, "
        "5 conflict/invalid, 6 cannot connect",
        parents=[common],
    )
    groups = root.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(
        sub: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        run: Callable[[Client, argparse.Namespace], None],
        help_: str,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        p.set_defaults(run=run)
        return p

    # ---------------------------------------------------------------- connectors
    g = groups.add_parser(
        "connectors", help="create, list, show, update, delete, rotate-url, versions, restore"
    )
    sub = g.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = command(sub, "create", connectors_create, "create a connector")
    p.add_argument("name")
    p.add_argument("--config", metavar="FILE", help="its configuration (JSON; - for stdin)")
    command(sub, "list", connectors_list, "list connectors")
    p = command(sub, "show", connectors_show, "show a connector and its configuration")
    p.add_argument("id")
    p = command(sub, "update", connectors_update, "save a new configuration (a new version)")
    p.add_argument("id")
    p.add_argument("--config", metavar="FILE", required=True, help="JSON; - for stdin")
    p.add_argument("--name", help="rename it too")
    p.add_argument(
        "--version",
        type=_positive_int,
        help="the version this save is based on (default: the current one; a stale one is refused)",
    )
    p = command(sub, "delete", connectors_delete, "delete a connector")
    p.add_argument("id")
    p = command(sub, "rotate-url", connectors_rotate, "generate a new connecting URL")
    p.add_argument("id")
    p.add_argument(
        "--grace",
        type=_non_negative_int,
        metavar="SECONDS",
        help="keep the old URL working this long (default: it dies now)",
    )
    p = command(sub, "versions", connectors_versions, "list the kept versions, newest first")
    p.add_argument("id")
    p = command(sub, "restore", connectors_restore, "restore version N (as a new version)")
    p.add_argument("id")
    p.add_argument("n", type=_positive_int)

    # ---------------------------------------------------------------- events
    g = groups.add_parser("events", help="list, show, tail, replay logged events")
    sub = g.add_subparsers(dest="command", required=True, metavar="COMMAND")
    statuses = ("received", "succeeded", "failed")
    p = command(sub, "list", events_list, "the event log, newest first")
    p.add_argument("id")
    p.add_argument("--status", choices=statuses)
    p.add_argument("--limit", type=_positive_int, default=50)
    p.add_argument(
        "--before",
        metavar="CURSOR",
        help="only older events: an ISO 8601 time, or the next_before of a --json page",
    )
    p = command(sub, "show", events_show, "one event: request, event, mapping, execution")
    p.add_argument("id")
    p.add_argument("event_id")
    p = command(sub, "tail", events_tail, "the latest events; --follow for new ones")
    p.add_argument("id")
    p.add_argument("--follow", "-f", action="store_true", help="keep polling until Ctrl-C")
    p.add_argument("--interval", type=_seconds, default=1.0, metavar="S", help="poll every S s")
    p.add_argument("--limit", type=_positive_int, default=10, help="how many to show first")
    p.add_argument("--status", choices=statuses)
    p = command(sub, "replay", events_replay, "run a logged event again")
    p.add_argument("id")
    p.add_argument("event_id")
    p.add_argument("--version", type=_positive_int, help="against this kept version")

    # ---------------------------------------------------------------- stats
    g = groups.add_parser("stats", help="show or reset a connector's counters")
    sub = g.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = command(sub, "show", stats_show, "received, succeeded, failed, duplicates, rejected")
    p.add_argument("id")
    p = command(sub, "reset", stats_reset, "start counting again from now")
    p.add_argument("id")
    return root


def _token(args: argparse.Namespace) -> str:
    token = getattr(args, "token", None) or os.environ.get("HOOKLINE_ADMIN_TOKEN", "")
    if token:
        return str(token)
    path = Path(os.environ.get("HOOKLINE_DATA_DIR", "./var")) / "admin-token"
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError:
        token = ""
    if not token:
        raise CliError(
            AUTH,
            f"no admin token: pass --token, set HOOKLINE_ADMIN_TOKEN, or run where {path} "
            "exists (make run prints the token)",
        )
    return token


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    signal.signal(signal.SIGTERM, _stop)
    try:
        url = getattr(args, "url", None) or os.environ.get("HOOKLINE_URL") or DEFAULT_URL
        args.run(Client(url, _token(args)), args)
    except CliError as exc:
        print(f"hookline: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem.get('path', '$')}: {problem.get('message', '')}", file=sys.stderr)
        sys.exit(exc.code)
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) ends `events tail --follow`
        sys.exit(OK)
    except BrokenPipeError:  # e.g. `hookline events list ID | head`
        sys.stderr.close()
        sys.exit(OK)
    sys.exit(OK)


if __name__ == "__main__":
    main()
