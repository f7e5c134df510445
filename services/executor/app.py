"""The executor: runs each mapped event's steps and publishes one execution log.

At-least-once with idempotent side effects: a step that succeeded is journaled
(Mongo, ``step_runs``) before the event is acked, so a redelivery skips it.
Transient failures are nak'ed with the backoff schedule; after the last attempt the
event is dead-lettered and logged as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from libs.domain import events
from libs.domain.connector import ConnectorConfig
from libs.domain.contacts import SYSTEM_ATTRIBUTES
from libs.infra import logging as hlog
from libs.infra.mongo import store as hmongo
from libs.infra.mongo.contacts import Contacts
from libs.infra.nats import client as natsio
from libs.infra.nats import subjects
from libs.infra.nats.registry import Registry
from libs.infra.settings import Settings
from libs.runtime import worker
from services.executor.actions import LiveActions
from services.executor.adapters import journal
from services.executor.adapters.http import HttpClient
from services.executor.adapters.whatsapp import WhatsAppClient
from services.executor.alerts import Alerts
from services.executor.core import engine
from services.executor.errors import BusyError
from services.executor.metrics import ExecutorMetrics

DURABLE = "executor"


class Executor:
    def __init__(
        self,
        settings: Settings,
        metrics: ExecutorMetrics,
        publisher: natsio.AckPublisher,
        store: hmongo.Store,
        registry: Registry,
        actions: engine.Actions,
        alerts: Alerts | None = None,
    ) -> None:
        self.settings = settings
        self.alerts = alerts
        self.metrics = metrics
        self.publisher = publisher
        self.store = store
        self.registry = registry
        self.actions = actions
        self.backoff = settings.backoff_schedule
        # A claim outlives the ack wait: a message is redelivered before a claim expires.
        self.lease_s = max(4 * settings.ack_wait_s, 10.0)
        # Deliveries of one event that fail outside any step (its config, the journal)
        # before it is logged as failed and dead-lettered: never resent forever.
        self.max_attempts = max(len(self.backoff) + 1, 10)
        # ...and not before the event has waited this long: an outage of the broker or
        # the database (a leader election, a failover) does not fail the events caught
        # in it.
        self.patience_s = max(30.0, 4 * settings.ack_wait_s)
        self.decode = events.decoder(events.EventMapped).decode
        self._versions: dict[tuple[str, int], ConnectorConfig] = {}

    async def handle(self, msgs: Sequence[natsio.Msg]) -> None:
        decoded = await worker.decode_batch(msgs, self.decode, self.metrics)
        if not decoded:
            return
        # One query for the whole batch: which steps already succeeded before. Only a
        # redelivered message can have run steps, so first deliveries skip the read.
        again = [ev.event_id for m, ev in decoded if (m.metadata.num_delivered or 1) > 1]
        done = await journal.done_outputs(self.store, again) if again else {}
        await asyncio.gather(*(self._one(m, ev, done.get(ev.event_id, {})) for m, ev in decoded))

    async def _config(self, event: events.EventMapped) -> ConnectorConfig | None:
        snap = self.registry.by_id(event.connector_id)
        if snap is not None and snap.version == event.connector_version:
            return snap.config
        key = (event.connector_id, event.connector_version)
        if key not in self._versions:
            row = await self.store.get_version(*key)
            if row is None:
                return snap.config if snap is not None else None
            self._versions[key] = msgspec.convert(row["config"], ConnectorConfig)
        return self._versions[key]

    async def _one(self, msg: natsio.Msg, event: events.EventMapped, done: dict[str, Any]) -> None:
        attempt = msg.metadata.num_delivered or 1
        with hlog.bind(
            event_id=event.event_id,
            connector_id=event.connector_id,
            correlation_id=event.correlation_id,
        ):
            try:
                await self._execute(msg, event, done, attempt)
            except Exception as exc:  # Mongo/NATS trouble: try again later, a bounded time
                hlog.get().warning("executor.retry_infrastructure", error=repr(exc)[:500])
                if (
                    attempt >= self.max_attempts
                    and self._age_s(msg) >= self.patience_s
                    and await self._give_up(event, attempt, exc)
                ):
                    await msg.ack()
                    return
                self.metrics.messages.labels("retried").inc()
                # At least a second apart: a broker electing a stream leader or a database
                # failing over takes seconds, and the retries are bounded by time too.
                await msg.nak(delay=max(self._delay(attempt), 1.0))

    @staticmethod
    def _age_s(msg: natsio.Msg) -> float:
        """Seconds since the stream stored the message (its first delivery's time)."""
        stored = msg.metadata.timestamp
        return (events.utcnow() - stored).total_seconds() if stored else float("inf")

    async def _give_up(self, event: events.EventMapped, attempt: int, exc: Exception) -> bool:
        """After ``max_attempts`` deliveries that failed outside any step: log the event
        as failed with the reason and dead-letter it.  False if even that fails (the
        broker is away too): then the message waits for the next delivery."""
        outcome = engine.Outcome(
            "failed", [], f"gave up after {attempt} attempts: {type(exc).__name__}: {exc}"[:500]
        )
        try:
            await self._dead_letter(event, outcome)
            await self._log(event, outcome, attempt, dead_lettered=True)
        except Exception as again:
            hlog.get().error("executor.give_up_failed", error=repr(again)[:300])
            return False
        self.metrics.messages.labels("failed").inc()
        return True

    def _delay(self, attempt: int, hint: float | None = None) -> float:
        if hint is not None:
            return hint
        if not self.backoff:
            return 1.0
        return self.backoff[min(attempt - 1, len(self.backoff) - 1)]

    async def _execute(
        self, msg: natsio.Msg, event: events.EventMapped, done: dict[str, Any], attempt: int
    ) -> None:
        snap = self.registry.by_id(event.connector_id)
        if snap is not None and snap.paused:
            await self._hold(msg, event)
            return
        config = await self._config(event)
        dead_lettered = False
        if config is None:  # connector deleted: nothing to run, still log the event
            outcome = engine.Outcome("failed", [], "connector no longer exists")
        else:
            try:
                outcome = await engine.run(
                    config.steps,
                    build_context(event),
                    self.actions,
                    journal.MongoJournal(
                        self.store, event.event_id, self.lease_s, self._expiry(event)
                    ),
                    done=done,
                    now=events.utcnow(),
                )
            except engine.Retry as retry:
                if isinstance(retry.error, BusyError):
                    self.metrics.messages.labels("busy").inc()
                    await msg.nak(delay=self.settings.ack_wait_s / 3)
                    return
                if attempt <= len(self.backoff):
                    self.metrics.messages.labels("retried").inc()
                    await msg.nak(delay=self._delay(attempt, retry.error.retry_after_s))
                    return
                outcome = engine.Outcome(
                    "failed", retry.steps, f"gave up after {attempt} attempts: {retry.error}"
                )
                await self._dead_letter(event, outcome)
                dead_lettered = True
        for step in outcome.steps:
            self.metrics.step_seconds.labels(step.type).observe(step.duration_ms / 1000)
        await self._log(event, outcome, attempt, dead_lettered=dead_lettered)
        await msg.ack()
        self.metrics.messages.labels(outcome.status).inc()
        self.metrics.events.labels(self.metrics.connector(event.connector_id), outcome.status).inc()

    def _expiry(self, event: events.EventMapped) -> datetime:
        days = event.received.retention_days or self.settings.log_retention_days
        return event.received.occurred_at + timedelta(days=days)

    async def _hold(self, msg: natsio.Msg, event: events.EventMapped) -> None:
        """A paused connector's event waits in the held stream, in arrival order, for
        the config service to put it back when the connector is resumed.  Acked only once
        held; the id names this delivery's stream position, so a redelivery is held once
        and the same event held again after a later pause is a new message."""
        seq = msg.metadata.sequence.stream if msg.metadata.sequence else 0
        await self.publisher.publish(
            subjects.held(self.settings.prefix, event.connector_id),
            msg.data,
            msg_id=f"held:{event.event_id}:{seq}",
        )
        await msg.ack()
        self.metrics.messages.labels("held").inc()
        self.metrics.events.labels(self.metrics.connector(event.connector_id), "held").inc()

    async def _log(
        self,
        event: events.EventMapped,
        outcome: engine.Outcome,
        attempt: int,
        *,
        dead_lettered: bool = False,
    ) -> None:
        logged = msgspec.structs.replace(
            execution_log(event, outcome, attempts=attempt), dead_lettered=dead_lettered
        )
        await self.publisher.publish(
            subjects.log(self.settings.prefix, event.connector_id),
            events.encode(logged),
            msg_id=f"log:{event.event_id}",
        )
        await self._alert(event, outcome, dead_lettered)

    async def _alert(
        self, event: events.EventMapped, outcome: engine.Outcome, dead_lettered: bool
    ) -> None:
        """Count the verdict for the connector's alerts, if it has any (current config)."""
        snap = self.registry.by_id(event.connector_id)
        if self.alerts is None or snap is None or snap.config.alerts is None:
            return
        try:
            await self.alerts.observe(
                snap.config.alerts,
                connector_id=snap.id,
                connector_name=snap.name,
                event_id=event.event_id,
                status=outcome.status,
                error=outcome.error,
                dead_lettered=dead_lettered,
                now=events.utcnow(),
            )
        except Exception as exc:  # an alert never holds up (or fails) the event itself
            hlog.get().warning("executor.alert_count_failed", error=repr(exc)[:300])

    async def _dead_letter(self, event: events.EventMapped, outcome: engine.Outcome) -> None:
        self.metrics.dead_lettered.labels(self.metrics.connector(event.connector_id)).inc()
        await self.publisher.publish(
            subjects.dead_letter(self.settings.prefix, event.connector_id),
            events.encode(event),
            msg_id=f"dlq:{event.event_id}",
        )


class NoJournal:
    """Dry runs: nothing is sent, nothing is remembered."""

    async def claim(self, step_id: str) -> engine.Claim:
        return engine.Claim("run")

    async def record(self, step_id: str, output: Any) -> None:
        return None

    async def release(self, step_id: str) -> None:
        return None


async def serve_dry_runs(nc: natsio.Client, executor: Executor, prefix: str) -> Any:
    """Answer dry-run requests: every step evaluated, actions rendered but not sent."""
    decode = events.decoder(events.DryRunRequest).decode

    async def on_request(msg: natsio.Msg) -> None:
        try:
            request = decode(msg.data)
            config = msgspec.convert(request.config, ConnectorConfig)
            outcome = await engine.run(
                config.steps,
                build_context(request.event),
                executor.actions,
                NoJournal(),
                done={},
                now=events.utcnow(),
                dry_run=True,
            )
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await msg.respond(events.encode({"error": f"bad dry-run request: {exc}"}))
            return
        except engine.Retry as retry:  # cannot happen without side effects; be safe
            outcome = engine.Outcome("failed", retry.steps, str(retry.error))
        await msg.respond(events.encode(execution_log(request.event, outcome, dry_run=True)))

    return await nc.subscribe(subjects.dry_run(prefix), queue="executor", cb=on_request)


def execution_log(
    event: events.EventMapped, outcome: engine.Outcome, *, attempts: int = 1, dry_run: bool = False
) -> events.ExecutionLogged:
    """The one execution-log event of a run (real or dry)."""
    return events.ExecutionLogged(
        **event.next_envelope(),
        status=outcome.status,  # type: ignore[arg-type]
        steps=outcome.steps,
        received=event.received,
        mapping=event.mapping,
        drift=event.drift,
        error=outcome.error,
        attempts=attempts,
        replay_of=event.received.replay_of,
        dry_run=dry_run,
    )


def build_context(event: events.EventMapped) -> dict[str, Any]:
    """All four attribute kinds (F5) for filters and templates."""
    context = event.received.context()
    contact = (event.mapping.contact or {}) if event.mapping else {}
    # Every name of contacts.SYSTEM_ATTRIBUTES, in its order; the contact's own fields by
    # their name, then the two that are not the contact's.
    system: dict[str, Any] = {name: contact.get(name) for name in SYSTEM_ATTRIBUTES}
    system.update(
        contact_id=event.mapping.contact_id if event.mapping else None,
        current_time=events.utcnow().isoformat(),
    )
    context["system"] = system
    context["subscriber"] = dict(contact.get("attributes") or {})
    context["formatter"] = {}
    return context


def create_app(settings: Settings, metrics: ExecutorMetrics | None = None) -> web.Application:
    metrics = metrics or ExecutorMetrics(max_connectors=settings.metrics_max_connectors)

    @contextlib.asynccontextmanager
    async def execute(bb: worker.Backbone) -> AsyncIterator[Executor]:
        http = HttpClient(allow_private_everywhere=settings.allow_private_targets)
        whatsapp = WhatsAppClient()
        await http.start()
        await whatsapp.start()
        actions = LiveActions(http, whatsapp, bb.channels, Contacts(bb.store), bb.store)
        alerting = Alerts(bb.store, bb.channels, http, metrics)
        executor = Executor(
            settings, metrics, bb.publisher, bb.store, bb.registry, actions, alerting
        )
        dry_runs = await serve_dry_runs(bb.nc, executor, settings.prefix)
        try:
            async with worker.consuming(
                bb,
                stream=settings.stream_events,
                durable=DURABLE,
                subject=subjects.all_mapped(settings.prefix),
                handler=executor.handle,
                lag=metrics.pending,
            ):
                yield executor
                await dry_runs.unsubscribe()
        finally:
            await alerting.close()
            await http.close()
            await whatsapp.close()

    return worker.worker_app(settings, "hookline-executor", metrics, execute)
