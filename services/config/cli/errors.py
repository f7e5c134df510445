"""The exit codes of ``hookline`` and the one error that ends a command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OK, OTHER, USAGE, NOT_FOUND, AUTH, INVALID, CONNECT = 0, 1, 2, 3, 4, 5, 6
EXIT_BY_STATUS = {400: INVALID, 401: AUTH, 403: AUTH, 404: NOT_FOUND, 409: INVALID, 422: INVALID}
EXIT_CODES = (
    "exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 unauthorized, "
    "5 conflict/invalid, 6 cannot connect"
)


class CliError(Exception):
    """Ends the command: ``message`` (and ``problems``) on stderr, exit ``code``."""

    def __init__(
        self, code: int, message: str, problems: Sequence[dict[str, Any]] = (), status: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = list(problems)
        self.status = status

    def lines(self) -> list[str]:
        """What stderr gets: the message, then one line per problem."""
        return [f"hookline: {self.message}"] + [
            f"  {p.get('path', '$')}: {p.get('message', '')}" for p in self.problems
        ]
