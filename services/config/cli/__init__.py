"""``hookline``: the operator's command-line client of the config API.

An HTTP client only (standard library HTTP, typer and rich). Of the server it shares
only the API's models (``services.config.models``): the rotate-url and replay bodies are
built from them and every table names their fields (``output.of_model``); a connector's
configuration file is sent as written, so the server lists every problem at once. It
runs anywhere the config API is reachable, and an API change that breaks it fails its
tests::

    hookline connectors create shop --config shop.json
    hookline connectors list
    hookline events tail <connector id> --follow
    hookline stats show <connector id> --json
    hookline connectors pause <connector id>
    hookline bulk-replay start <connector id> --where body.customer.region=eu --wait

The URL comes from ``--url`` or ``HOOKLINE_URL`` (default http://127.0.0.1:8080), the
admin token from ``--token``, ``HOOKLINE_ADMIN_TOKEN`` or the ``admin-token`` file of
``HOOKLINE_DATA_DIR`` (default ./var).  Human-readable tables by default, ``--json``
for scripts.  Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 unauthorized,
5 conflict or invalid input (the problems are listed), 6 cannot connect.

Modules: ``client`` (HTTP), ``output`` (JSON, tables), ``session`` (global options,
command registration, exit codes), ``selection`` (the ``--where`` and time range
options ``events list`` and ``bulk-replay start`` share), one per command group
(``connectors``, ``events``, ``stats``, ``bulk_replay``).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

import typer

from services.config.cli import bulk_replay, connectors, events, stats
from services.config.cli.errors import EXIT_CODES
from services.config.cli.session import Globals, JsonOption, TokenOption, UrlOption

app = typer.Typer(
    name="hookline",
    help="Command-line client of the Hookline config API.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain text: "[$HOOKLINE_URL ...]" is no markup
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(connectors.app, name="connectors")
app.add_typer(events.app, name="events")
app.add_typer(stats.app, name="stats")
app.add_typer(bulk_replay.app, name="bulk-replay")


@app.callback()
def root(
    ctx: typer.Context,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    ctx.obj = Globals(url, token, as_json)


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """The ``hookline`` entry point; exits with the command's code."""
    signal.signal(signal.SIGTERM, _stop)
    app(args=list(argv) if argv is not None else None, prog_name="hookline")
