"""``BENCH_PROFILE=1 make bench``: a py-spy profile of each Python service (and
SecantusDB) during the wrk run on ingest, and what each spends its samples on.

py-spy samples the running processes from outside (ptrace), so the services run
unchanged; its raw output (collapsed stacks, ``bench/results/profile-<name>.txt``)
loads in speedscope or flamegraph.pl.  The summary is each process's top functions by
self time (where the samples were), and by inclusive time for our own code.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

RATE_HZ = 200
_FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def available() -> str | None:
    """The py-spy executable beside this Python, if installed."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pids: dict[str, int], duration_s: float, out_dir: Path) -> dict[str, Any]:
    """One ``py-spy record`` per process, in the background, for ``duration_s``."""
    exe = available()
    if exe is None:
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    running = {}
    for name, pid in pids.items():
        path = out_dir / f"profile-{name.replace('/', '_')}.txt"
        argv = [exe, "record", "--pid", str(pid), "--duration", str(int(duration_s))]
        argv += ["--rate", str(RATE_HZ), "--format", "raw", "--nonblocking", "--output", str(path)]
        running[name] = (
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
            path,
        )
    return running


def _frame(text: str) -> tuple[str, str]:
    found = _FRAME.match(text)
    if not found:
        return text, ""
    return found["fn"], found["file"]


def _short(fn: str, file: str) -> str:
    parts = Path(file).parts
    for anchor in ("site-packages", "services", "libs", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (1 if anchor in ("site-packages", "lib") else 0) :]
            break
    where = "/".join(parts[-3:]) if parts else file
    return f"{fn} ({where})"


def summarize(path: Path, top: int = 8) -> dict[str, Any]:
    """Self time by function, and inclusive time of our code (``services``/``libs``)."""
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        own[_short(*frames[-1])] += n
        for fn in {
            _short(f, file) for f, file in frames if "/services/" in file or "/libs/" in file
        }:
            ours[fn] += n

    def share(counts: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(total, 1), 1)) for k, v in counts.most_common(top)]

    return {"samples": total, "self": share(own), "ours_inclusive": share(ours)}


def finish(running: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (popen, path) in running.items():
        _, err = popen.communicate(timeout=120)
        if popen.returncode != 0 or not path.exists():
            out[name] = {"error": err.decode(errors="replace").strip()[-300:]}
            continue
        out[name] = summarize(path) | {"file": str(path)}
    return out


def report(profiles: dict[str, Any]) -> None:
    if not profiles:
        return
    print("\n  py-spy profiles during the wrk run (share of each process's samples):")
    for name, p in profiles.items():
        if "error" in p:
            print(f"    {name}: py-spy failed: {p['error']}")
            continue
        print(f"    {name} ({p['samples']:,} samples; {p['file']}):")
        for fn, pct in p["self"][:6]:
            print(f"      {pct:5.1f}% self  {fn}")
        for fn, pct in p["ours_inclusive"][:4]:
            print(f"      {pct:5.1f}% in    {fn}")
