"""Write-only connector secrets (F12): shown redacted, kept when sent back redacted.

The verification's ``secrets`` and the handshake's ``verify_token``/``secret`` are
stored whole (ingest needs them) but the API and the versions list only ever show
"…" and the last 4 characters.  A client that saves what it was shown keeps the
stored secrets; a redacted value that stands for no stored secret is a 422, never a
secret silently replaced by "…abcd".
"""

from __future__ import annotations

from typing import Any

import msgspec

from libs.domain import handshakes, verification
from libs.domain.connector import ConnectorConfig
from libs.domain.redaction import is_redacted, redact_secret
from libs.infra.http import ApiError


def shown(config: ConnectorConfig) -> ConnectorConfig:
    changes: dict[str, Any] = {}
    if config.verification is not None:
        changes["verification"] = verification.shown(config.verification)
    if config.handshake is not None:
        changes["handshake"] = handshakes.shown(config.handshake)
    return msgspec.structs.replace(config, **changes) if changes else config


def kept(config: ConnectorConfig, stored: ConnectorConfig | None) -> ConnectorConfig:
    """``config`` with every redacted secret replaced by the stored one it stands for."""
    problems: list[dict[str, str]] = []
    changes: dict[str, Any] = {}
    if config.verification is not None:
        before = stored.verification.secrets if stored and stored.verification else []
        sent = config.verification.secrets
        secrets = verification.keep_secrets(sent, before)
        if secrets is None:
            problems += [
                _problem(f"$.config.verification.secrets[{k}]")
                for k, value in enumerate(sent)
                if is_redacted(value)
            ]
        else:
            changes["verification"] = msgspec.structs.replace(config.verification, secrets=secrets)
    if config.handshake is not None:
        old = stored.handshake if stored else None
        fields: dict[str, str | None] = {}
        for name in ("verify_token", "secret"):
            value = getattr(config.handshake, name)
            if not is_redacted(value):
                continue
            previous = getattr(old, name, None) if old is not None else None
            if previous is None or redact_secret(previous) != value:
                problems.append(_problem(f"$.config.handshake.{name}"))
            fields[name] = previous
        if fields:
            changes["handshake"] = msgspec.structs.replace(config.handshake, **fields)
    if problems:
        raise ApiError(
            422, "invalid_config", f"{len(problems)} problem(s) in the configuration",
            problems=problems,
        )  # fmt: skip
    return msgspec.structs.replace(config, **changes) if changes else config


def _problem(path: str) -> dict[str, str]:
    return {
        "path": path,
        "message": "is a redacted value ('…') that stands for no stored secret; "
        "send the secret itself",
    }
