"""The config API over HTTP: the standard library's client, JSON in and out.

Every failure becomes a :class:`CliError` with the exit code it stands for.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import msgspec

from services.config.cli.errors import CONNECT, EXIT_BY_STATUS, OTHER, CliError

TIMEOUT_S = 30.0


class Client:
    def __init__(self, url: str, token: str, timeout: float = TIMEOUT_S) -> None:
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        url = self.base + path
        # A list is the parameter repeated (``body.tag=a&body.tag=b``).
        params = {k: v for k, v in (query or {}).items() if v is not None and v != []}
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            # A request model of the API's own (services.config.models) or plain JSON.
            data = (
                msgspec.json.encode(body)
                if isinstance(body, msgspec.Struct)
                else json.dumps(body).encode()
            )
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise api_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(CONNECT, f"cannot connect to {self.base}: {reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(OTHER, f"{method} {path}: the answer is not JSON") from None


def api_error(status: int, raw: bytes) -> CliError:
    """The API's ``{"error": {code, message, problems}}`` (or any body) as a CliError."""
    code, message, problems = "", "", []
    try:
        error = json.loads(raw)["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
        problems = [p for p in error.get("problems") or [] if isinstance(p, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        message = raw.decode("utf-8", "replace").strip()[:500]
    text = message or f"HTTP {status}"
    text += f" ({status} {code})" if code else f" ({status})"
    return CliError(EXIT_BY_STATUS.get(status, OTHER), text, problems, status)


def segment(value: str) -> str:
    """``value`` as one path segment (``/`` and the rest escaped)."""
    return urllib.parse.quote(value, safe="")


def connector(cid: str) -> str:
    return f"/api/v1/connectors/{segment(cid)}"
