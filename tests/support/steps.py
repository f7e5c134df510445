"""Connector steps that several tests build: the drip day (a branch behind a filter)."""

from __future__ import annotations

from typing import Any


def only_on(value: str, filter_id: str) -> dict[str, Any]:
    """A filter step that passes events whose custom variable ``value`` is ``value``."""
    condition = {"attribute": "custom_variables.value", "op": "equals", "value": value}
    return {"type": "filter", "id": filter_id, "when": {"conditions": [condition]}}


def day_branch(
    value: str, branch_id: str, filter_id: str, *steps: dict[str, Any]
) -> dict[str, Any]:
    """A drip day: a branch whose ``steps`` run only for events sent with ``?value=<value>``
    (a failed filter stops this branch only)."""
    return {"type": "branch", "id": branch_id, "steps": [only_on(value, filter_id), *steps]}
