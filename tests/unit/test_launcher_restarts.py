"""The launcher's restart backoff: 1, 2, 4 … 30 s, reset after a minute of health."""

from __future__ import annotations

from libs.local.launcher import Restarts


def test_backoff_grows_waits_and_resets() -> None:
    now = [0.0]
    r = Restarts(clock=lambda: now[0])
    assert r.next_delay("mapper") == 1.0  # restarted at once, the next waits 1 s
    assert r.next_delay("mapper") is None  # crashed again at once: wait
    now[0] = 1.5
    assert r.next_delay("mapper") == 2.0
    delays = []
    for _ in range(8):
        now[0] += 31
        delays.append(r.next_delay("mapper"))
    assert delays == [4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    now[0] += 61
    r.healthy("mapper")
    assert r.next_delay("mapper") == 1.0
    assert r.next_delay("ingest") == 1.0  # each service its own
