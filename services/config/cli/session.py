"""The global options, the session a command runs in, and how a command is registered.

``--url``, ``--token`` and ``--json`` work before or after the command
(``hookline --json connectors list`` or ``hookline connectors list --json``): the root
callback keeps what it was given, and :func:`command` adds the same three options to
every command, the command's own winning.  A command is then a plain function
``run(session, *its own arguments)``; :func:`command` turns its :class:`CliError`,
Ctrl-C (or SIGTERM) and a closed stdout into the exit code and the message.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from services.config.cli.client import Client
from services.config.cli.errors import AUTH, OK, CliError
from services.config.cli.output import Output

DEFAULT_URL = "http://127.0.0.1:8080"

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help=f"config API URL [$HOOKLINE_URL or {DEFAULT_URL}]",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="admin token [$HOOKLINE_ADMIN_TOKEN or $HOOKLINE_DATA_DIR/admin-token]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print raw JSON", show_default=False)]
ConnectorId = Annotated[str, typer.Argument(metavar="ID", show_default=False)]


@dataclass(frozen=True)
class Globals:
    """The global options as given (None / False: not given at this level)."""

    url: str | None = None
    token: str | None = None
    json: bool = False

    def over(self, outer: Globals) -> Globals:
        """These options, falling back on ``outer``'s where not given."""
        return replace(
            outer,
            url=self.url or outer.url,
            token=self.token or outer.token,
            json=self.json or outer.json,
        )


@dataclass
class Session:
    """What a command works with: the API client and where its result goes."""

    api: Client
    out: Output


def admin_token(given: str | None) -> str:
    """``--token``, else $HOOKLINE_ADMIN_TOKEN, else the data dir's ``admin-token`` file."""
    token = given or os.environ.get("HOOKLINE_ADMIN_TOKEN", "")
    if token:
        return token
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


def open_session(options: Globals) -> Session:
    url = options.url or os.environ.get("HOOKLINE_URL") or DEFAULT_URL
    return Session(Client(url, admin_token(options.token)), Output(options.json))


def run_guarded(work: Callable[[], None]) -> None:
    """Run a command; its outcome becomes the exit code (via ``typer.Exit``)."""
    try:
        work()
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except CliError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) ends `events tail --follow`
        raise typer.Exit(OK) from None
    except BrokenPipeError:  # e.g. `hookline events list ID | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        raise typer.Exit(OK) from None


def root_options(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


_KW = inspect.Parameter.KEYWORD_ONLY
_GLOBAL_PARAMETERS = [
    inspect.Parameter("url", _KW, default=None, annotation=UrlOption),
    inspect.Parameter("token", _KW, default=None, annotation=TokenOption),
    inspect.Parameter("as_json", _KW, default=False, annotation=JsonOption),
]
_CONTEXT = inspect.Parameter(
    "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
)

Run = Callable[..., None]


def command(group: typer.Typer, name: str, summary: str) -> Callable[[Run], Run]:
    """Register ``run(session, ...)`` as ``<group> <name>``: its parameters after the
    session become the command's arguments and options, the global options are added."""

    def register(run: Run) -> Run:
        own = list(inspect.signature(run, eval_str=True).parameters.values())[1:]
        taken = {p.name for p in own} & {"ctx", *(p.name for p in _GLOBAL_PARAMETERS)}
        assert not taken, f"{run.__name__}: {taken} are the global options' names"

        @functools.wraps(run)
        def invoke(
            ctx: typer.Context, url: str | None, token: str | None, as_json: bool, **arguments: Any
        ) -> None:
            options = Globals(url, token, as_json).over(root_options(ctx))
            run_guarded(lambda: run(open_session(options), **arguments))

        parameters = [_CONTEXT, *own, *_GLOBAL_PARAMETERS]
        invoke.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        invoke.__annotations__ = {p.name: p.annotation for p in parameters}
        group.command(name, help=summary)(invoke)
        return run

    return register
