"""Starting the embedded servers (nats-server with JetStream, SecantusDB) as processes.

Used by ``make run`` (the launcher) and by the test fixtures, so tests start the
servers exactly the way a user's laptop does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pymongo


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path
    argv: list[str] = field(default_factory=list)
    monitor_url: str = ""  # nats-server's monitoring endpoint, when it is one

    def alive(self) -> bool:
        return self.popen.poll() is None


# Ports this process has handed out: the kernel may offer a port again as soon as its
# probe socket is closed, and two picks for one server set (a node's cluster port equal
# to another's monitor port) kept a test cluster from forming once.
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, and not handed out before by this process."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no loopback port left that was not handed out already")


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, proc: Proc | None = None
) -> None:
    """Poll ``check`` until it is true; fail with ``what`` (and the log tail) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what}: process exited early\n{tail(proc.log_path)}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    extra = f"\n{tail(proc.log_path)}" if proc is not None else ""
    raise TimeoutError(f"{what} not ready after {timeout_s}s{extra}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _bin(name: str) -> str:
    """A console script from this interpreter's environment (the venv), else PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: run `make setup`")
    return found


def spawn(
    name: str, argv: list[str], log_dir: Path, url: str, env: dict[str, str] | None = None
) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    popen = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # Ctrl-C in the terminal goes to the launcher only
    )
    log.close()
    return Proc(name, popen, url, log_path, argv)


# An event carries its raw bytes (base64) and its parsed body: about 2.4 times the
# body, so the 1 MB default body limit needs more than NATS's 1 MB default payload.
# Compose and Kubernetes set the same (deploy/).
NATS_CONF = "max_payload: 8MB\n"


def start_nats(data_dir: Path, port: int | None = None, monitor_port: int | None = None) -> Proc:
    port = port or free_port()
    monitor_port = monitor_port or free_port()
    store = data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "nats.conf"
    conf.write_text(NATS_CONF)
    proc = spawn(
        "nats",
        [
            _bin("nats-server"),
            "-c",
            str(conf),
            "-js",
            "-sd",
            str(store),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(monitor_port),
        ],
        data_dir / "logs",
        f"nats://127.0.0.1:{port}",
    )
    health = f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true"
    wait_until(lambda: urllib.request.urlopen(health, timeout=1).status == 200, 20, "nats", proc)
    return proc


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=1) as response:
        return json.load(response)


def nats_healthy(monitor_url: str) -> bool:
    """The full health check: JetStream up, and (in a cluster) the meta group, streams
    and consumers this server holds are current."""
    with urllib.request.urlopen(monitor_url + "/healthz", timeout=1) as response:
        return bool(response.status == 200)


def meta_leader(monitor_url: str) -> str:
    """The JetStream meta leader this server knows of ("" while there is none)."""
    meta = get_json(monitor_url + "/jsz").get("meta_cluster") or {}
    return str(meta.get("leader") or "")


def start_nats_cluster(data_dir: Path, n: int = 3, name: str = "hookline") -> list[Proc]:
    """``n`` nats-server processes with JetStream, routed to each other on loopback (a
    NATS cluster, as in production), each with its own store; returns once every node is
    healthy and agrees on a JetStream meta leader, so R``n`` streams can be created."""
    ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
    routes = ",".join(f"nats://127.0.0.1:{route}" for _, _, route in ports)
    conf = data_dir / "nats.conf"
    data_dir.mkdir(parents=True, exist_ok=True)
    conf.write_text(NATS_CONF)
    nodes: list[Proc] = []
    for index, (port, monitor, route) in enumerate(ports):
        store = data_dir / f"nats-{index}"
        store.mkdir(parents=True, exist_ok=True)
        node = f"n{index}"
        proc = spawn(
            f"nats-{node}",
            [
                _bin("nats-server"),
                *("-c", str(conf), "-js", "-sd", str(store), "-n", node),
                *("-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)),
                *("--cluster_name", name, "--cluster", f"nats://127.0.0.1:{route}"),
                *("--routes", routes),
            ],
            data_dir / "logs",
            f"nats://127.0.0.1:{port}",
        )
        proc.monitor_url = f"http://127.0.0.1:{monitor}"
        nodes.append(proc)
    for proc in nodes:
        wait_until(partial(nats_healthy, proc.monitor_url), 30, proc.name, proc)
    wait_until(
        lambda: (
            len({meta_leader(p.monitor_url) for p in nodes} - {""}) == 1
            and all(meta_leader(p.monitor_url) for p in nodes)
        ),
        30,
        "a JetStream meta leader",
    )
    return nodes


def restart(proc: Proc) -> Proc:
    """Start a stopped (or killed) process again: same command, ports, store and log."""
    if proc.alive():
        raise RuntimeError(f"{proc.name} is still running")
    again = spawn(proc.name, proc.argv, proc.log_path.parent, proc.url)
    again.monitor_url = proc.monitor_url
    return again


def start_mongo(data_dir: Path, port: int | None = None, *, standalone: bool = False) -> Proc:
    """SecantusDB on loopback, a single-node replica set (it keeps an oplog);
    ``standalone=True`` (benchmarks only) without."""
    port = port or free_port()
    store = data_dir / "mongo"
    store.mkdir(parents=True, exist_ok=True)
    proc = spawn(
        "secantusdb",
        [
            _bin("secantusd-py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(store),
            "--log-level",
            "WARNING",
            # ``--standalone``: no replica-set advertisement, so no oplog. Measured by
            # bench/storecost.py, the oplog's cost per event-log insert is within the
            # noise (495 vs 530 us in one run, 785 vs 930 in another), so the default
            # (a single-node replica set, as production's MongoDB is) is kept.
            *(["--standalone"] if standalone else []),
        ],
        data_dir / "logs",
        f"mongodb://127.0.0.1:{port}/?directConnection=true",
    )

    def ping() -> bool:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            proc.url, serverSelectionTimeoutMS=500
        )
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()

    wait_until(ping, 60, "secantusdb", proc)
    return proc


def stop(proc: Proc, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
    """SIGTERM, wait, then SIGKILL: every process we start ends."""
    stop_all([proc], timeout_s, sig)
    return proc.popen.returncode


def stop_all(procs: Sequence[Proc], timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """:func:`stop` for several at once: each is signalled before any is waited for, so
    their graceful shutdowns overlap instead of adding up."""
    alive = [proc for proc in procs if proc.alive()]
    for proc in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, sig)
    deadline = time.monotonic() + timeout_s
    for proc in alive:
        try:
            proc.popen.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(5)
