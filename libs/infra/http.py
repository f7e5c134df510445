"""HTTP helpers shared by the services: the one error shape of API.md."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """``{"error": {"code": ..., "message": ...}}`` with the given status."""
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


class ApiError(Exception):
    """Raised by handlers; turned into :func:`error` by the config API's middleware."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        return error(self.status, self.code, self.message, **self.extra)
