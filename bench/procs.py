"""Processes the benchmark starts: free ports, the baseline server, the Hookline launcher,
and per-process CPU time read from ``/proc`` (where the cores went during a run)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free now.

    Picked below the kernel's ephemeral range when there is room, so that the client
    ends of connections (wrk's, the services' own, other people's tests) cannot take
    them between now and the moment a server binds them.
    """
    low, _high = _ephemeral_range()
    rng = random.SystemRandom()
    ports: list[int] = []
    socks: list[socket.socket] = []
    try:
        candidates = rng.sample(range(10000, low), min(400, low - 10000)) if low > 11000 else []
        for port in candidates:
            if len(ports) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
        while len(ports) < count:  # no room below the range: let the kernel choose
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
        return ports
    finally:
        for s in socks:
            s.close()


def wait_for(
    check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool] = lambda: True
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what}: the process exited early")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not ready after {timeout_s:.0f}s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


# ------------------------------------------------------------------ baseline


@dataclass
class Baseline:
    popen: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start_baseline(port: int) -> Baseline:
    popen = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline", "--port", str(port)],
        cwd=ROOT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = Baseline(popen, f"http://127.0.0.1:{port}/c/baseline")
    try:
        wait_for(
            lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
            30,
            "baseline",
            lambda: popen.poll() is None,
        )
    except BaseException:
        base.stop()
        raise
    return base


# ------------------------------------------------------------------ Hookline

_PORT_VARS = (
    "HOOKLINE_INGEST_PORT", "HOOKLINE_CONFIG_PORT", "HOOKLINE_MAPPER_PORT",
    "HOOKLINE_EXECUTOR_PORT", "HOOKLINE_NATS_PORT", "HOOKLINE_NATS_MONITOR_PORT",
    "HOOKLINE_MONGO_PORT", "HOOKLINE_PROJECTOR_PORT",
)  # fmt: skip


@dataclass
class Hookline:
    popen: subprocess.Popen[bytes]
    data_dir: Path
    ports: dict[str, int]
    token: str = ""
    stdout_path: Path = field(default_factory=Path)

    def url(self, port_var: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_var]}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['HOOKLINE_CONFIG_PORT']}/api/v1"

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM the launcher (it stops the services, then the servers) and wait.

        Any process left paused by an interrupted measurement is resumed first: a
        stopped process cannot act on SIGTERM.
        """
        if self.popen.poll() is None:
            for pid in process_tree(self.popen.pid).values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                print(f"launcher did not stop within {timeout_s:.0f}s: SIGKILL", file=sys.stderr)
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def output(self) -> str:
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""


def start_hookline(data_dir: Path, attempts: int = 3, timeout_s: float = 120.0) -> Hookline:
    """The launcher in ``data_dir`` on fresh free ports; returns once it is running.

    A port taken by someone else between picking and binding makes a service exit
    early; then it is tried again on other ports (a new data dir each time).
    """
    for attempt in range(1, attempts + 1):
        try:
            return _start_hookline(
                data_dir / f"try{attempt}", free_ports(len(_PORT_VARS)), timeout_s
            )
        except RuntimeError as exc:
            if attempt == attempts or "address already in use" not in str(exc):
                raise
            print(f"  a port was taken meanwhile; retrying on other ports ({exc})", flush=True)
    raise AssertionError("unreachable")


def _start_hookline(data_dir: Path, ports: list[int], timeout_s: float) -> Hookline:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("HOOKLINE_") and k not in {"NATS_URL", "MONGO_URI"}
    }  # fmt: skip
    named = dict(zip(_PORT_VARS, ports, strict=True))
    env.update({k: str(v) for k, v in named.items()})
    env["HOOKLINE_DATA_DIR"] = str(data_dir)
    env["HOOKLINE_PUBLIC_URL"] = f"http://127.0.0.1:{named['HOOKLINE_INGEST_PORT']}"
    stdout_path = data_dir / "launcher.out"
    data_dir.mkdir(parents=True, exist_ok=True)
    with stdout_path.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "libs.local.launcher"], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # our Ctrl-C is handled by us, then SIGTERM → launcher
        )  # fmt: skip
    system = Hookline(popen, data_dir, named, stdout_path=stdout_path)
    try:
        wait_for(
            lambda: "Hookline is running." in system.output(),
            timeout_s,
            "hookline launcher",
            lambda: popen.poll() is None,
        )
        system.token = (data_dir / "admin-token").read_text().strip()
    except RuntimeError as exc:
        system.stop()
        output = system.output()
        if "address already in use" in output:
            raise RuntimeError(f"{exc}: address already in use") from None
        print(output[-4000:], file=sys.stderr)
        raise
    except BaseException:
        system.stop()
        print(system.output()[-4000:], file=sys.stderr)
        raise
    return system


# ------------------------------------------------------------------ CPU accounting


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _label(pid: int) -> str:
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return str(pid)
    if not Path(words[0]).name.startswith("python") or len(words) < 2:
        return Path(words[0]).name  # a binary (nats-server)
    if words[1] == "-m" and len(words) > 2:
        return words[2].removeprefix("services.")  # python -m services.ingest
    return Path(words[1]).name  # a console script (secantusd-py)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_tree(root: int) -> dict[str, int]:
    """``{label: pid}`` for ``root`` and its direct children (the launcher's services)."""
    tree = {_label(root): root}
    for child in _children(root):
        tree[_label(child)] = child
    return tree


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _system_jiffies() -> dict[str, int]:
    """The machine's CPU time by kind, from the first line of /proc/stat."""
    try:
        values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        return dict(zip(_STAT_FIELDS, map(int, values), strict=True))
    except (OSError, ValueError):
        return dict.fromkeys(_STAT_FIELDS, 0)


class CpuMeter:
    """Cores each named process used between ``__init__`` and ``stop()`` (1.0 = one core).

    Also, for the whole machine: ``other``, process time not ours (other people's work
    on a shared machine); ``kernel_irq``, interrupt and softirq time (loopback networking
    is mostly here, charged to no process); ``steal``, time the hypervisor took away.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.jiffies0 = _system_jiffies()
        self.wall = 0.0
        self.extra: dict[str, float] = {}

    def stop(self) -> dict[str, float]:
        """Per-process cores; the machine-wide ones are computed by ``finish``."""
        wall = self.wall = max(time.monotonic() - self.t0, 1e-9)
        cores = {
            name: round((cpu_seconds(pid) - self.start[name]) / wall, 3)
            for name, pid in self.pids.items()
        }
        j1 = _system_jiffies()
        d = {k: j1[k] - self.jiffies0[k] for k in _STAT_FIELDS}
        total = sum(d.values())
        ncpu = os.cpu_count() or 1

        def share(*kinds: str) -> float:
            return ncpu * sum(d[k] for k in kinds) / total if total else 0.0

        self.extra = {
            "process_time": share("user", "nice", "system"),
            "kernel_irq": round(share("irq", "softirq"), 3),
            "steal": round(share("steal"), 3),
        }
        return cores

    def finish(self, cores: dict[str, float]) -> dict[str, float]:
        """``cores`` (ours, possibly with more entries added) plus the machine-wide ones."""
        ours = sum(cores.values())
        return cores | {
            "other": round(max(self.extra.get("process_time", 0.0) - ours, 0.0), 3),
            "kernel_irq": self.extra.get("kernel_irq", 0.0),
            "steal": self.extra.get("steal", 0.0),
        }


class Paused:
    """SIGSTOP some processes for a measurement, SIGCONT them afterwards (even on errors).

    Used to measure ingest on its own: with mapper, executor, the projector and the
    database paused, ingest and nats-server have the machine to themselves.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def __enter__(self) -> Paused:
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return self

    def resume(self, name: str) -> None:
        """SIGCONT one of them now (the others stay paused until the end)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pids[name], signal.SIGCONT)

    def __exit__(self, *_exc: object) -> None:
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def memory_mib(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    out: dict[str, dict[str, float]] = {}
    for name, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

        def mib(key: str, fields: dict[str, str] = fields) -> float:
            return round(int(fields.get(key, "0 kB").split()[0]) / 1024, 1)

        out[name] = {"rss": mib("VmRSS"), "peak": mib("VmHWM")}
    return out
