"""``make run``: the embedded servers and the four services on one machine.

Starts nats-server (JetStream) and SecantusDB unless ``NATS_URL`` / ``MONGO_URI`` are
set, then one process per service; waits until each answers ``/readyz``; prints the
URLs and the admin token; restarts a service that crashed, with backoff, and says so
(an embedded server that dies stops everything: every service depends on it); on
Ctrl-C or SIGTERM stops the services (graceful), then the servers, and exits.  It
starts services by module name and never imports them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

from libs.infra import settings as hsettings
from libs.local import embedded

# (name, module, port setting, environment): the processes, in start order. The config
# API and its projector run apart, as in production, so either restarts alone.
SERVICES: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    # first: it provisions Mongo indexes and republishes KV
    ("config", "services.config", "config_port", {"HOOKLINE_CONFIG_ROLES": "api"}),
    ("projector", "services.config.projector_main", "projector_port", {}),
    ("ingest", "services.ingest", "ingest_port", {}),
    ("mapper", "services.mapper", "mapper_port", {}),
    ("executor", "services.executor", "executor_port", {}),
)


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


def main() -> int:
    settings = hsettings.ensure_admin_token(hsettings.load())
    data = Path(settings.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    started: list[embedded.Proc] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = dict(os.environ, HOOKLINE_ADMIN_TOKEN=settings.admin_token, HOOKLINE_DATA_DIR=str(data))
    try:
        if not settings.nats_url:
            nats = embedded.start_nats(data, settings.nats_port, settings.nats_monitor_port)
            started.append(nats)
            env["NATS_URL"] = nats.url
        if not settings.mongo_uri:
            mongo = embedded.start_mongo(data, settings.mongo_port)
            started.append(mongo)
            env["MONGO_URI"] = mongo.url
        spawners: dict[str, Callable[[], embedded.Proc]] = {}
        for name, module, port_field, role_env in SERVICES:
            port = getattr(settings, port_field)
            spawners[name] = partial(
                embedded.spawn,
                name,
                [sys.executable, "-m", module],
                data / "logs",
                f"http://{settings.host}:{port}",
                {**env, **role_env},
            )
            proc = spawners[name]()
            started.append(proc)
            embedded.wait_until(partial(_ready, proc.url + "/readyz"), 60, name, proc)
        print(
            "Hookline is running.\n"
            f"  ingest URL base   {settings.public_url.rstrip('/')}/c/<token>\n"
            f"  config API        http://{settings.host}:{settings.config_port}/api/v1\n"
            f"  admin token       {settings.admin_token}\n"
            f"  metrics/health    ingest :{settings.ingest_port}  config :{settings.config_port}"
            f"  mapper :{settings.mapper_port}  executor :{settings.executor_port}"
            f"  projector :{settings.projector_port}"
            "  (/metrics /healthz /readyz)\n"
            f"  data and logs     {data}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        restarts = Restarts()
        while not stop.is_set():
            for i, proc in enumerate(started):
                if proc.alive():
                    restarts.healthy(proc.name)
                    continue
                spawn = spawners.get(proc.name)
                if spawn is None:  # an embedded server: everything depends on it
                    print(
                        f"{proc.name} exited ({proc.popen.returncode}); see {proc.log_path}",
                        file=sys.stderr,
                        flush=True,
                    )
                    stop.set()
                    break
                delay = restarts.next_delay(proc.name)
                if delay is None:
                    continue  # waiting out the backoff
                print(
                    f"{proc.name} exited ({proc.popen.returncode}); restarting it "
                    f"(restart {restarts.count[proc.name]}, next backoff {delay:.0f}s); "
                    f"see {proc.log_path}",
                    file=sys.stderr,
                    flush=True,
                )
                started[i] = spawn()
            stop.wait(0.5)
        return 0
    except (TimeoutError, RuntimeError, FileNotFoundError) as exc:
        print(f"hookline: could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # Services first (they settle in-flight work and drain), then the servers.
        for proc in reversed(started):
            embedded.stop(proc)
        print("Hookline stopped.", flush=True)


class Restarts:
    """Backoff for restarting a crashed service: 1, 2, 4 … 30 s between restarts, back
    to 1 s once it has run for a minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.count: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._since: dict[str, float] = {}

    def next_delay(self, name: str) -> float | None:
        """The backoff after this restart, or None while the last one's is running."""
        now = self.clock()
        if now < self._not_before.get(name, 0.0):
            return None
        n = self.count.get(name, 0)
        self.count[name] = n + 1
        delay = min(2.0**n, 30.0)
        self._not_before[name] = now + delay
        self._since[name] = now
        return delay

    def healthy(self, name: str) -> None:
        if name in self._since and self.clock() - self._since[name] > 60.0:
            self.count.pop(name, None)
            self._since.pop(name, None)


if __name__ == "__main__":
    sys.exit(main())
