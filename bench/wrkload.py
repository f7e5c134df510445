"""wrk: make sure it is installed, write the POST script, run it, parse its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.payload import ORDER

LUA_PATH = Path(__file__).with_name("post.lua")
THREADS = 2
CONNECTIONS = 50

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}  # → milliseconds


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    duration_s: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_wrk() -> str:
    """The path of ``wrk``; installs the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    print("wrk not found: running `apt-get update -qq && apt-get install -y -qq wrk`", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=300)
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is still not on PATH after apt-get install wrk")
    return found


def lua_script(headers: dict[str, str] | None = None) -> str:
    body = ORDER.decode()
    if "]]" in body:
        raise ValueError("the payload cannot contain ']]' (Lua long-string delimiter)")
    extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    return (
        "-- Written by bench/wrkload.py from bench/payload.py: edit the payload there.\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"{extra}"
        f"wrk.body = [[{body}]]\n"
    )


def write_lua(path: Path = LUA_PATH, headers: dict[str, str] | None = None) -> Path:
    text = lua_script(headers)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if match is None:
        raise ValueError(f"unrecognised wrk duration {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str, duration_s: int) -> WrkResult:
    """Requests/s, p50/p99 (``--latency`` table), non-2xx/3xx count and socket errors."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rps is None or p99 is None or p50 is None or total is None:
        raise ValueError(f"could not parse wrk's output:\n{output}")
    non2xx = re.search(r"^\s+Non-2xx or 3xx responses:\s+(\d+)", output, re.M)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx_3xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=errors,
        duration_s=duration_s,
    )


def run(wrk: str, url: str, duration_s: int, lua: Path) -> WrkResult:
    """One bounded wrk run (``-d`` seconds, killed after a generous timeout)."""
    argv = [
        wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration_s}s", "--latency",
        "-s", str(lua), url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout, duration_s)
