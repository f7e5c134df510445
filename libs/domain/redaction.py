"""How a secret is shown once saved: never whole, only enough to tell two apart.

One rule for channel credentials and verification secrets alike, so a client can send
back what the API showed it and the stored secret is kept (see ``is_redacted``).
"""

from __future__ import annotations

from typing import Any, Final

REDACTED: Final = "…"  # what a shown secret starts with
SHOW_TAIL_FROM: Final = 12  # a shorter secret shows none of itself


def redact_secret(value: str) -> str:
    """The secret as shown: "…" and its last 4 characters."""
    return REDACTED + value[-4:] if len(value) >= SHOW_TAIL_FROM else REDACTED


def is_redacted(value: Any) -> bool:
    """Whether a value sent by a client is a shown secret, not a new one."""
    return isinstance(value, str) and value.startswith(REDACTED)
