"""Static checks of a connector configuration: every problem, with its JSON path.

Some checks need what the operator has defined elsewhere (the structure, channels,
subscriber attributes); they are passed in as ``Known`` so this module stays pure.
A check whose facts are unknown (e.g. no structure learned yet) is skipped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from libs.domain import formatters, handshakes, paths, references, templating, verification
from libs.domain.connector import (
    ConnectorConfig,
    EmailStep,
    FilterStep,
    FormatterStep,
    HttpStep,
    WhatsAppStep,
    sources,
    walk,
)
from libs.domain.contacts import SYSTEM_NAMES
from libs.domain.events import EVENT_ROOTS
from libs.domain.filters import validate_group
from libs.domain.mapping import validate_mapping

Problem = tuple[str, str]

# Event attributes that exist on every event whatever its body.
REQUEST_ROOTS = frozenset(EVENT_ROOTS) - {"body"}


@dataclass
class Known:
    fields: set[str] | None = None  # structure field paths; None: no structure yet
    sample: Any = None
    channels: set[str] | None = None
    channel_types: dict[str, str] = field(default_factory=dict)  # id -> email, http, …
    subscriber: set[str] | None = None
    formatter_outputs: set[str] = field(default_factory=set)


def validate(config: ConnectorConfig, known: Known | None = None) -> list[Problem]:
    known = known or Known()
    problems: list[Problem] = []
    if not 100 <= config.response.status <= 599:
        problems.append(("$.response.status", "must be an HTTP status code (100..599)"))
    if config.response.body is not None:
        _template(config.response.body, "$.response.body", problems)
    if config.idempotency_key is not None:
        _path(config.idempotency_key, "$.idempotency_key", problems)
    if config.max_body_bytes is not None and not 1 <= config.max_body_bytes <= 64 * 1024 * 1024:
        problems.append(("$.max_body_bytes", "must be in 1..67108864"))
    if config.rate_limit_per_s is not None and config.rate_limit_per_s <= 0:
        problems.append(("$.rate_limit_per_s", "must be positive"))
    _sources(config, problems)
    _mapping(config, known, problems)
    _steps(config, problems)
    outputs = _formatter_outputs(config)
    _channels(config, known, problems)
    _references(config, known, outputs, problems)
    return problems


MAX_ALLOWED_IPS = 256


def _sources(config: ConnectorConfig, problems: list[Problem]) -> None:
    """Verification, allowed addresses and handshake: whatever each needs, named."""
    if config.verification is not None:
        for where, message in verification.problems(config.verification):
            problems.append((f"$.verification.{where}", message))
    if len(config.allowed_ips) > MAX_ALLOWED_IPS:
        problems.append(("$.allowed_ips", f"at most {MAX_ALLOWED_IPS} networks"))
    for k, cidr in enumerate(config.allowed_ips[:MAX_ALLOWED_IPS]):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append((f"$.allowed_ips[{k}]", f"{cidr!r} is not an address or CIDR"))
    if config.handshake is not None:
        v = config.verification
        secret = v.secrets[0] if v is not None and v.secrets else None
        for where, message in handshakes.problems(config.handshake, secret):
            problems.append((f"$.handshake.{where}", message))


def _mapping(config: ConnectorConfig, known: Known, problems: list[Problem]) -> None:
    m = config.mapping
    if m is None:
        return
    problems.extend(validate_mapping(m, "$.mapping"))
    if known.subscriber is not None:
        for key in m.attributes:
            if key not in known.subscriber:
                problems.append(
                    (
                        f"$.mapping.attributes.{key}",
                        f"subscriber attribute {key!r} is not defined (POST /api/v1/attributes)",
                    )
                )


def _steps(config: ConnectorConfig, problems: list[Problem]) -> None:
    seen: set[str] = set()
    for here, step, _ in walk(config.steps):
        if not step.id:
            problems.append((f"{here}.id", "every step needs an id"))
        elif step.id in seen:
            problems.append((f"{here}.id", f"step id {step.id!r} is used twice"))
        seen.add(step.id)
        if isinstance(step, FilterStep):
            problems.extend(validate_group(step.when, f"{here}.when"))
        elif isinstance(step, WhatsAppStep) and not (step.text or step.template_name):
            problems.append((here, "a WhatsApp step needs text or template_name"))
        elif isinstance(step, EmailStep) and not (step.text or step.html):
            problems.append((here, "an email step needs text or html"))
        for name, text, template in sources(step):
            if template:
                _template(text, f"{here}.{name}", problems)
            else:
                _path(text, f"{here}.{name}", problems)
        if isinstance(step, FormatterStep):
            for message in formatters.validate(step.op, step.options):
                problems.append((f"{here}.options", message))


def _formatter_outputs(config: ConnectorConfig) -> set[str]:
    outputs: set[str] = set()
    for _, step, _ in walk(config.steps):
        if isinstance(step, FormatterStep):
            outputs.add(step.output)
        elif isinstance(step, HttpStep):
            outputs.add(step.id)
    return outputs


def _channels(config: ConnectorConfig, known: Known, problems: list[Problem]) -> None:
    if known.channels is None:
        return
    used: list[tuple[str, str]] = []
    if config.mapping is not None and config.mapping.channel:
        used.append(("$.mapping.channel", config.mapping.channel))
    for here, step, _ in walk(config.steps):
        channel = getattr(step, "channel", None)
        if isinstance(channel, str) and channel:
            used.append((f"{here}.channel", channel))
    if config.alerts is not None:
        used.append(("$.alerts.channel", config.alerts.channel))
        _alert_channel(config, known, problems)
    for where, channel_id in used:
        if channel_id not in known.channels:
            problems.append((where, f"unknown channel id {channel_id!r}"))


def _alert_channel(config: ConnectorConfig, known: Known, problems: list[Problem]) -> None:
    """An alert goes by email (with recipients) or HTTP, nothing else."""
    assert config.alerts is not None
    kind = known.channel_types.get(config.alerts.channel)
    if kind is not None and kind not in ("email", "http"):
        problems.append(("$.alerts.channel", f"a {kind} channel cannot alert: use email or http"))
    if kind == "email" and not (config.alerts.to or "").strip():
        problems.append(("$.alerts.to", "an email alert needs recipients"))


def _references(
    config: ConnectorConfig, known: Known, outputs: set[str], problems: list[Problem]
) -> None:
    for where, path in references.references(config):
        try:
            parts = paths.parse(path)
        except paths.PathError:
            continue  # reported by the syntax checks
        root = parts[0]
        second = parts[1] if len(parts) > 1 else None
        if root == "body":
            if (
                known.fields is not None
                and path not in known.fields
                and not paths.exists(known.sample, path)
            ):
                problems.append(
                    (where, f"unknown attribute {path}: the structure has no such field")
                )
        elif root == "system":
            if second is not None and second not in SYSTEM_NAMES:
                problems.append((where, f"unknown system attribute {path}"))
        elif root == "subscriber":
            if (
                known.subscriber is not None
                and second is not None
                and (second not in known.subscriber)
            ):
                problems.append((where, f"unknown subscriber attribute {path}"))
        elif root == "formatter":
            if second is not None and second not in outputs:
                problems.append(
                    (
                        where,
                        f"unknown formatter attribute {path}: no formatter "
                        "or HTTP step produces it",
                    )
                )
        elif root not in REQUEST_ROOTS:
            problems.append((where, f"unknown attribute {path}"))


def _template(source: str, at: str, problems: list[Problem]) -> None:
    issue = templating.check(source)
    if issue:
        problems.append((at, f"template does not compile: {issue}"))


def _path(path: str, at: str, problems: list[Problem]) -> None:
    try:
        paths.parse(path)
    except paths.PathError as exc:
        problems.append((at, str(exc)))
