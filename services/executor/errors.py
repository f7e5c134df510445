"""Executor errors: transient (retry with backoff) vs permanent (fail at once).

This module is the one place that decides which is which.
"""

from __future__ import annotations

from pymongo.errors import ConnectionFailure


class StepError(Exception):
    """A step failed. ``transient`` failures are retried, others fail the step at once."""

    transient = False

    def __init__(self, message: str, *, output: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.output = output


class TransientError(StepError):
    transient = True

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, output: object = None
    ) -> None:
        super().__init__(message, output=output)
        self.retry_after_s = retry_after_s


class BusyError(TransientError):
    """Another delivery of the same event holds the step's claim: not a failure, so it
    does not use up attempts; the claim's lease bounds how long it can last."""


class PermanentError(StepError):
    pass


# Exceptions from outside the adapters' own checks that mean "try again later": the
# network or a database away.  Every other exception an action raises is a bug or a
# value it cannot take (a CR/LF from a webhook in a header, say): it fails the step.
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError)


def classify_exception(exc: BaseException) -> StepError:
    """Any exception an action raised, as the StepError it stands for."""
    if isinstance(exc, StepError):
        return exc
    if isinstance(exc, ConnectionFailure):
        return TransientError(f"database unreachable: {exc}"[:500])
    if isinstance(exc, TRANSIENT_EXCEPTIONS):
        return TransientError(f"{type(exc).__name__}: {exc}"[:500])
    return PermanentError(f"{type(exc).__name__}: {exc}"[:500])


def classify_http_status(status: int) -> type[StepError] | None:
    """None for success; the error class for a failed response."""
    if status < 400:
        return None
    if status == 429 or status >= 500 or status == 408:
        return TransientError
    return PermanentError
