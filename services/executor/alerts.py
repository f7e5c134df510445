"""Alerts to the operator (F14), the executor's side: every verdict of a connector
with ``alerts`` is counted into its current window in MongoDB (one atomic update,
shared by the replicas); the verdict that makes the window call for a notification
claims it (another atomic update: one claimant per window) and sends it through the
alert's email or HTTP channel.  A send that fails gives the claim back, so the next
verdict of the window tries again: at most one notification per window is sent.

Counting costs one database round trip per event of a connector with alerts, and
none for the others.  A redelivered event's verdict may be counted twice (counts are
at least once); a notification in flight when the executor crashes is lost.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import msgspec

from libs.domain import alerts
from libs.domain.channels import HttpChannel, SmtpChannel
from libs.infra import logging as hlog
from libs.infra.mongo.store import Store
from libs.infra.nats.channel_registry import ChannelRegistry
from services.executor.actions import on_origin, refuse_private_host
from services.executor.adapters.email import send_email
from services.executor.adapters.http import HttpClient
from services.executor.errors import PermanentError
from services.executor.metrics import ExecutorMetrics

SEND_TIMEOUT_S = 15.0


class Alerts:
    def __init__(
        self, store: Store, channels: ChannelRegistry, http: HttpClient, metrics: ExecutorMetrics
    ) -> None:
        self.store = store
        self.channels = channels
        self.http = http
        self.metrics = metrics
        self._sending: set[asyncio.Task[None]] = set()

    async def observe(
        self,
        alert: alerts.AlertConfig,
        *,
        connector_id: str,
        connector_name: str,
        event_id: str,
        status: str,
        error: str | None,
        dead_lettered: bool,
        now: datetime,
    ) -> None:
        start = alerts.window_start(now, alert.window_s)
        wid = alerts.window_id(connector_id, start, alert.window_s)
        failed = status == "failed"
        counts = {"total": 1, "failed": int(failed), "dead_lettered": int(dead_lettered)}
        last: dict[str, Any] = {"last_event_id": event_id}
        if failed:
            last["last_error"] = (error or "")[:500]
        doc = await self.store.count_alert_window(
            wid, counts, last, start + timedelta(seconds=alert.window_s, days=1)
        )
        window = msgspec.convert(doc, alerts.Window, strict=False, from_attributes=False)
        why = alerts.reason(alert, window)
        if why is None or doc.get("alerted") or not await self.store.claim_alert(wid, why, now):
            return
        note = alerts.message(
            alert, window, why, connector_id=connector_id, connector_name=connector_name,
            start=start,
        )  # fmt: skip
        # In the background: the event's ack does not wait for a mail server.
        task = asyncio.create_task(self._send(alert, wid, note))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, alert: alerts.AlertConfig, wid: str, note: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self._deliver(alert, wid, note), SEND_TIMEOUT_S * 2)
        except Exception as exc:
            hlog.get().warning(
                "executor.alert_failed", window=wid, channel=alert.channel, error=repr(exc)[:300]
            )
            try:
                await self.store.unclaim_alert(wid)
            except Exception as again:  # the window keeps its claim: no retry this window
                hlog.get().warning("executor.alert_unclaim_failed", error=repr(again)[:300])
            # Counted once the claim is given back: whoever sees the count sees the window
            # ready for the next verdict's try (the test read it in between, once).
            self.metrics.alerts.labels(note["reason"], "failed").inc()
            return
        self.metrics.alerts.labels(note["reason"], "sent").inc()
        hlog.get().info("executor.alert_sent", window=wid, reason=note["reason"])

    async def _deliver(self, alert: alerts.AlertConfig, wid: str, note: dict[str, Any]) -> None:
        channel = self.channels.get(alert.channel)
        if isinstance(channel, SmtpChannel):
            if not alert.to:
                raise PermanentError("an email alert needs `to`")
            address = None
            if not (channel.allow_private or self.http.allows_private):
                address = await refuse_private_host(channel.host, channel.port)
            await send_email(
                channel, address=address, to=alert.to, subject=note["subject"],
                text=note["text"], html="", message_id=f"alert.{wid}",
            )  # fmt: skip
        elif isinstance(channel, HttpChannel):
            if not channel.base_url:
                raise PermanentError(f"channel {channel.id!r} has no base_url to post to")
            url = channel.base_url.rstrip("/") + (
                "/" + alert.path.lstrip("/") if alert.path else ""
            )
            on_origin(url, channel.base_url, channel.id)
            body = {k: v for k, v in note.items() if k not in ("subject", "text")}
            await self.http.request(
                "POST",
                url,
                headers={**channel.headers, "Idempotency-Key": f"alert:{wid}",
                         "Content-Type": "application/json"},
                body=msgspec.json.encode(body).decode(),
                timeout_s=SEND_TIMEOUT_S,
                allow_private=channel.allow_private,
            )  # fmt: skip
        else:
            raise PermanentError(f"alert channel {alert.channel!r} is no email or HTTP channel")

    async def close(self) -> None:
        """Let the notifications in flight finish (bounded by their timeouts)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
