"""Per-connector token buckets (in each ingest instance). Time is passed in.

Each of N live ingest instances gives a connector rate / N (N from ``peers``), so the
connector's ``rate_limit_per_s`` holds across instances when its traffic is spread
over them (a load balancer's round robin)."""

from __future__ import annotations


class TokenBuckets:
    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def allow(self, key: str, rate_per_s: float, now: float) -> bool:
        burst = max(1.0, rate_per_s)  # one second's worth of requests may arrive at once
        tokens, last = self._state.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate_per_s)
        if tokens < 1.0:
            self._state[key] = (tokens, now)
            return False
        self._state[key] = (tokens - 1.0, now)
        return True
