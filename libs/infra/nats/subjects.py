"""NATS subject names: the only place they are spelled."""

from __future__ import annotations


def received(prefix: str, connector_id: str) -> str:
    return f"{prefix}.events.received.{connector_id}"


def mapped(prefix: str, connector_id: str) -> str:
    return f"{prefix}.events.mapped.{connector_id}"


def log(prefix: str, connector_id: str) -> str:
    return f"{prefix}.logs.{connector_id}"


def dead_letter(prefix: str, connector_id: str) -> str:
    return f"{prefix}.dlq.{connector_id}"


def held(prefix: str, connector_id: str) -> str:
    """A paused connector's mapped events, in arrival order, until it is resumed."""
    return f"{prefix}.held.{connector_id}"


def all_held(prefix: str) -> str:
    return f"{prefix}.held.*"


def all_received(prefix: str) -> str:
    return f"{prefix}.events.received.*"


def all_mapped(prefix: str) -> str:
    return f"{prefix}.events.mapped.*"


def all_logs(prefix: str) -> str:
    return f"{prefix}.logs.*"


def all_dead_letters(prefix: str) -> str:
    return f"{prefix}.dlq.*"


def dry_run(prefix: str) -> str:
    """Core NATS request/reply subject served by every executor (queue group)."""
    return f"{prefix}.executor.dry-run"
