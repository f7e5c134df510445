"""The services as real processes (``python -m services.<name>``), the way ``make run``
starts them, so tests can kill, restart or SIGTERM one of them."""

from __future__ import annotations

import os
import signal
import sys
import urllib.request
from functools import partial
from pathlib import Path

from libs.infra.settings import Settings
from libs.local import embedded

PORT_ENV = {
    "ingest": "HOOKLINE_INGEST_PORT",
    "config": "HOOKLINE_CONFIG_PORT",
    "mapper": "HOOKLINE_MAPPER_PORT",
    "executor": "HOOKLINE_EXECUTOR_PORT",
}


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


class ProcessSystem:
    def __init__(self, settings: Settings, log_dir: Path, extra_env: dict[str, str] | None = None):
        self.settings = settings
        self.log_dir = log_dir
        self.ports = {name: embedded.free_port() for name in PORT_ENV}
        self.env = dict(
            os.environ,
            NATS_URL=settings.nats_url,
            MONGO_URI=settings.mongo_uri,
            HOOKLINE_MONGO_DB=settings.mongo_db,
            HOOKLINE_PREFIX=settings.prefix,
            HOOKLINE_ADMIN_TOKEN=settings.admin_token,
            HOOKLINE_DATA_DIR=settings.data_dir,
            HOOKLINE_RETRY_BACKOFF=settings.retry_backoff,
            HOOKLINE_ACK_WAIT_S=str(settings.ack_wait_s),
            HOOKLINE_PUBLIC_URL=f"http://127.0.0.1:{self.ports['ingest']}",
            **{PORT_ENV[name]: str(port) for name, port in self.ports.items()},
            **(extra_env or {}),
        )
        self.procs: dict[str, list[embedded.Proc]] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def spawn(
        self, name: str, *, port: int | None = None, module: str | None = None
    ) -> embedded.Proc:
        """Start one copy of a service without waiting for it (another copy needs its own
        ``port``); ``module`` runs another entry point in its place (e.g. one with a fault
        injected)."""
        env = dict(self.env)
        port = port or self.ports[name]
        env[PORT_ENV[name]] = str(port)
        copy = len(self.procs.get(name, []))
        proc = embedded.spawn(
            f"{name}-{copy}",
            [sys.executable, "-m", module or f"services.{name}"],
            self.log_dir,
            f"http://127.0.0.1:{port}",
            env,
        )
        self.procs.setdefault(name, []).append(proc)
        return proc

    def start(
        self, name: str, *, port: int | None = None, module: str | None = None
    ) -> embedded.Proc:
        """Start one copy of a service and wait until it is ready (see ``spawn``)."""
        proc = self.spawn(name, port=port, module=module)
        embedded.wait_until(partial(_ready, proc.url + "/readyz"), 60, name, proc)
        return proc

    def start_all(self, copies: int = 1) -> ProcessSystem:
        """Every service, ``copies`` of each (the first on its port in ``ports``, the others
        on free ports): the config copies one after the other (the first provisions the
        streams and buckets: on a NATS cluster, two creating the same stream at once can
        leave one without an answer until its timeout), then the others side by side."""
        groups = [("config",)] * copies + [("ingest", "mapper", "executor")]
        for group in groups:
            per_name = 1 if group == ("config",) else copies
            started = [
                self.spawn(name, port=None if not self.procs.get(name) else embedded.free_port())
                for name in group
                for _ in range(per_name)
            ]
            for proc in started:
                embedded.wait_until(partial(_ready, proc.url + "/readyz"), 60, proc.name, proc)
        return self

    def urls(self, name: str) -> list[str]:
        """The base URL of each running copy of a service."""
        return [proc.url for proc in self.procs.get(name, [])]

    def kill(self, name: str) -> None:
        """SIGKILL: no cleanup, no ack, no drain — a crash."""
        for proc in self.procs.pop(name, []):
            os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(10)

    def stop(self) -> None:
        embedded.stop_all([proc for procs in self.procs.values() for proc in procs])
        self.procs.clear()
