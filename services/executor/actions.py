"""The executor's side effects, behind the engine's ``Actions`` port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.connector import HttpStep
from services.executor.adapters.http import HttpClient
from services.executor.core.engine import ActionStep
from services.executor.errors import PermanentError


class LiveActions:
    def __init__(self, http: HttpClient) -> None:
        self.http = http

    async def run(
        self, step: ActionStep, rendered: Mapping[str, Any], context: Mapping[str, Any]
    ) -> Any:
        if isinstance(step, HttpStep):
            return await self.http.request(
                step.method,
                rendered["url"],
                headers=rendered["headers"],
                body=rendered["body"],
                timeout_s=step.timeout_s,
            )
        raise PermanentError(f"action type {type(step).__name__} is not available")
