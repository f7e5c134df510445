"""What keeping the raw bytes costs, per event, in the code an event passes through.

Same process, same payloads, same loop, twice: with the raw bytes kept (as Hookline
runs) and without (``raw=None``, as before they were kept).  Measured: ingest's parse
and encode, the four stream decodes (mapper, executor, the projector's two), and the
projector's log document with its BSON encoding (what PyMongo sends).  CPU seconds from
``time.process_time``; the figure that matters is the ratio, measured in one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import bson
import msgspec

from libs.domain import events
from libs.domain.bodies import parse_request
from libs.infra.mongo.codec import to_bson
from services.config.projector import received_doc

_received = events.decoder(events.EventReceived)
_logged = events.decoder(events.ExecutionLogged)


def _one_event(body: bytes, keep_raw: bool) -> None:
    parsed = parse_request("application/json", body)
    event = events.EventReceived(
        event_id=events.new_id(),
        connector_id="c",
        connector_version=1,
        occurred_at=events.utcnow(),
        correlation_id="x",
        request=events.Request(
            method="POST",
            headers={"content-type": "application/json", "user-agent": "bench"},
            query={},
            source_ip="127.0.0.1",
            content_type="application/json",
            size=len(body),
        ),
        body=parsed,
        custom_variables={},
        raw=body if keep_raw else None,
    )
    wire = events.encode(event)
    got = _received.decode(wire)  # the mapper
    _received.decode(wire)  # the projector's received projection
    logged = events.ExecutionLogged(
        event_id=got.event_id,
        connector_id="c",
        connector_version=1,
        occurred_at=events.utcnow(),
        correlation_id="x",
        status="succeeded",
        steps=[],
        received=got,
    )
    log_wire = events.encode(logged)
    _logged.decode(log_wire)  # the projector's log projection
    _received.decode(wire)  # the executor (inside EventMapped; close enough)
    bson.encode(to_bson(received_doc(msgspec.structs.replace(got))))


@dataclass(frozen=True)
class RawCost:
    body_bytes: int
    us_without: float
    us_with: float

    @property
    def ratio(self) -> float:
        return self.us_with / self.us_without if self.us_without else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "body_bytes": self.body_bytes,
            "cpu_us_per_event_without_raw": round(self.us_without, 1),
            "cpu_us_per_event_with_raw": round(self.us_with, 1),
            "ratio": round(self.ratio, 3),
        }


def cpu_us(run: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):  # the least disturbed of three rounds
        start = time.process_time()
        for _ in range(n):
            run()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def measure(bodies: list[bytes], n: int = 2_000) -> list[RawCost]:
    out = []
    for body in bodies:
        count = max(50, n * 300 // max(len(body), 300))
        without = cpu_us(lambda b=body: _one_event(b, False), count)  # type: ignore[misc]
        with_raw = cpu_us(lambda b=body: _one_event(b, True), count)  # type: ignore[misc]
        out.append(RawCost(len(body), without, with_raw))
    return out


__all__ = ["RawCost", "measure"]
