"""What checking a signature costs, per request, in process: ``verify()`` on the bench
payload for each scheme, against the same loop doing no check.  The wrk phase
measures the same thing through ingest; this one says which scheme costs what."""

from __future__ import annotations

import functools
import json

from bench.payload import ORDER
from bench.rawcost import cpu_us
from libs.domain import verification
from tests.support import signers

NOW = 1_700_000_000


def measure(n: int = 5_000) -> dict[str, float]:
    """Scheme → CPU microseconds per verified request (the check alone)."""
    url = "https://hooks.example.com/c/token"
    body = json.dumps({"From": "+14155550100", "order": json.loads(ORDER)}).encode()
    out: dict[str, float] = {}
    for scheme, (options, sign, _) in signers.SCHEMES.items():
        secret = signers.secret_for(scheme, "bench")
        cfg = verification.Verification(**{**options, "secrets": [secret]})
        sent = sign(secret, body, NOW, url)
        target = f"{url}?{sent.query}" if sent.query else url
        headers = {k.lower(): v for k, v in sent.headers.items()}
        request = verification.Signed(
            "POST", target, headers, sent.body, sent.content_type,
            query=[tuple(kv.split("=", 1)) for kv in sent.query.split("&") if kv],  # type: ignore[misc]
        )  # fmt: skip
        verification.verify(cfg, request, NOW)  # it must pass, or the figure means nothing
        check = functools.partial(verification.verify, cfg, request, NOW)
        out[scheme] = round(cpu_us(check, n), 2)
    return out


__all__ = ["measure"]
