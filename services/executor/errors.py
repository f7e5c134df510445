"""Executor errors: transient (retry with backoff) vs permanent (fail at once).

This module is the one place that decides which is which.
"""

from __future__ import annotations


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


def classify_http_status(status: int) -> type[StepError] | None:
    """None for success; the error class for a failed response."""
    if status < 400:
        return None
    if status == 429 or status >= 500 or status == 408:
        return TransientError
    return PermanentError
