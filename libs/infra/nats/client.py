"""NATS JetStream helpers: connect, provision streams/consumers/KV idempotently, pull loops.

Start-up provisioning is idempotent so every instance of every service can run it:
a stream that exists is updated to the wanted config, never recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue
from prometheus_client import Gauge

from libs.infra import logging as hlog
from libs.infra.nats import subjects
from libs.infra.settings import Settings

# JetStream drops a second publish with the same Nats-Msg-Id inside this window:
# re-sends after a crash and senders' retries with an idempotency key.
DUPLICATE_WINDOW_S = 3600.0


async def connect(settings: Settings, name: str) -> Client:
    log = hlog.get()

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", error=str(exc))

    async def on_disconnect() -> None:
        log.warning("nats.disconnected")

    async def on_reconnect() -> None:
        log.info("nats.reconnected")

    # NATS_URL may list several servers of a cluster (comma-separated): all are tried,
    # and the client also learns the cluster's other servers from the one it reaches.
    servers = [url.strip() for url in settings.nats_url.split(",") if url.strip()]
    return await nats.connect(
        servers=servers or settings.nats_url,
        name=name,
        max_reconnect_attempts=-1,  # keep trying forever: a broker restart is not fatal
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:
        # Exists with another config (err 10058): bring it to the wanted one.
        await js.update_stream(config)


async def provision(js: JetStreamContext, settings: Settings) -> KeyValue:
    """Streams EVENTS, LOGS and HELD and the connectors KV bucket; returns the bucket."""
    p = settings.prefix
    # name: (subjects, max age).  Held events wait as long as their connector is
    # paused, so only their size bounds them; the rest is in transit for a week at most.
    streams = {
        settings.stream_events: ([f"{p}.events.>"], settings.stream_max_age_s),
        settings.stream_logs: ([f"{p}.logs.>", f"{p}.dlq.>"], settings.stream_max_age_s),
        settings.stream_held: ([f"{p}.held.>"], 0.0),
    }
    for name, (filters, max_age) in streams.items():
        await _ensure_stream(
            js,
            StreamConfig(
                name=name,
                subjects=filters,
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=max_age,
                max_bytes=settings.stream_max_bytes,
                discard=DiscardPolicy.NEW,  # full: refuse the new, never drop the unprocessed
                num_replicas=settings.stream_replicas,
            ),
        )
    try:
        return await js.key_value(settings.kv_connectors)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=settings.kv_connectors,
                history=1,
                storage=StorageType.FILE,
                replicas=settings.stream_replicas,
            )
        )


async def pull_subscription(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subject: str,
    ack_wait_s: float = 30.0,
    max_deliver: int = -1,
    max_ack_pending: int = 5000,
) -> JetStreamContext.PullSubscription:
    """A durable pull consumer shared by every instance of a service (work is spread).

    One that exists keeps its position; its ack wait, delivery limit and
    ``max_ack_pending`` are updated to these (the client would bind to it as it is, so a
    release that changes them would not reach a running deployment)."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        filter_subject=subject,
    )
    with contextlib.suppress(nats.js.errors.NotFoundError):
        have = (await js.consumer_info(stream, durable)).config
        wanted = (config.ack_wait, config.max_deliver, config.max_ack_pending)
        if (have.ack_wait, have.max_deliver, have.max_ack_pending) != wanted:
            # The server updates a consumer added again under its name with an edited
            # config (these fields may change; its position stays).
            edited = dataclasses.replace(
                have,
                ack_wait=config.ack_wait,
                max_deliver=config.max_deliver,
                max_ack_pending=config.max_ack_pending,
            )
            await js.add_consumer(stream, edited)
    return await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)


BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


async def consume(
    sub: JetStreamContext.PullSubscription,
    handler: BatchHandler,
    stop: asyncio.Event,
    *,
    batch: int = 256,
    wait_s: float = 0.5,
    keepalive_s: float | None = None,
) -> None:
    """Fetch batches until ``stop`` is set; the handler settles (acks/naks) every message.

    Stopping is checked between batches only, so a batch in flight is always finished
    and settled before the loop returns (graceful shutdown).
    """
    log = hlog.get()
    while not stop.is_set():
        try:
            msgs = await sub.fetch(batch, timeout=wait_s)
        except (nats.errors.TimeoutError, TimeoutError):
            continue  # nothing to do for now
        except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
            return
        except Exception as exc:  # broker hiccup: wait and go on, never die
            log.warning("consume.fetch_failed", error=repr(exc))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            continue
        # While the batch is handled, tell the server it is being worked on, so a slow
        # batch is not redelivered to another instance and run twice meanwhile.
        keepalive = asyncio.create_task(_keep_alive(msgs, keepalive_s)) if keepalive_s else None
        try:
            await handler(msgs)
        except Exception:
            # A bug in the handler must not kill the loop; unsettled messages are
            # redelivered after ack_wait.
            log.exception("consume.handler_crashed", count=len(msgs))
        finally:
            if keepalive is not None:
                keepalive.cancel()


async def _keep_alive(msgs: Sequence[Msg], every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        for msg in msgs:
            if not msg._ackd:  # settled ones need nothing more
                with contextlib.suppress(Exception):
                    await msg.in_progress()


def msg_id_header(msg_id: str) -> dict[str, str]:
    return {"Nats-Msg-Id": msg_id}


__all__ = [
    "Client",
    "JetStreamContext",
    "KeyValue",
    "Msg",
    "connect",
    "consume",
    "msg_id_header",
    "provision",
    "pull_subscription",
    "subjects",
]


async def watch_lag(
    sub: JetStreamContext.PullSubscription, gauge: Gauge, durable: str, stop: asyncio.Event
) -> None:
    """Publish the consumer's pending count (its lag) to ``gauge`` every few seconds."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            info = await sub.consumer_info()
            gauge.labels(durable).set(info.num_pending or 0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5.0)


async def shutdown(nc: Client, subs: Sequence[JetStreamContext.PullSubscription] = ()) -> None:
    """Unsubscribe pull consumers, then drain (flush pending publishes) and close.

    A pull subscription left subscribed makes ``drain()`` wait for its timeout, so
    they go first; a drain that still hangs is cut short, the messages it held are
    redelivered to another instance after ``ack_wait``.
    """
    for sub in subs:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    try:
        await asyncio.wait_for(nc.drain(), timeout=10.0)
    except Exception:
        with contextlib.suppress(Exception):
            await nc.close()


class PublishError(Exception):
    """JetStream did not store the message (no ack in time, no stream, or an error)."""


class _Ack(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


class AckPublisher:
    """JetStream publish with ack, made for many concurrent publishes (the ingest path).

    nats-py's ``js.publish`` is a request per message: a random reply token (a system
    call), a future wrapped in ``wait_for`` and a dataclass-built ack.  This keeps one
    wildcard reply subscription, numbers replies with a counter, arms one timer per
    message and decodes acks with msgspec.  Same guarantee: ``publish`` returns only
    once the stream has stored the message (or says it is a duplicate), else raises.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._counter = itertools.count()
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._prefix + ".*", cb=self._on_reply)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_reply(self, msg: Msg) -> None:
        future = self._pending.pop(msg.subject.rsplit(".", 1)[1], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(PublishError("no JetStream stream for this subject"))
        else:
            future.set_result(msg.data)

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str, timeout_s: float = 5.0
    ) -> bool:
        """Store ``payload``; returns True when JetStream says it is a duplicate."""
        token = str(next(self._counter))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[token] = future
        timer = loop.call_later(timeout_s, _expire, future)
        try:
            await self._nc.publish(
                subject, payload, reply=f"{self._prefix}.{token}", headers={"Nats-Msg-Id": msg_id}
            )
            data = await future
        finally:
            timer.cancel()
            self._pending.pop(token, None)
        return _stored(data)

    async def publish_many(
        self, messages: Sequence[tuple[str, bytes, str]], *, timeout_s: float = 5.0
    ) -> list[Exception | None]:
        """Store each ``(subject, payload, msg_id)``; one outcome per message, in order:
        None once the stream has it (or had it: a duplicate), else the error.

        For a batch (the mapper's): every message is sent, then the acks are awaited
        together under one timer, with no task per message.
        """
        loop = asyncio.get_running_loop()
        tokens: list[str] = []
        futures: list[asyncio.Future[bytes]] = []
        for subject, payload, msg_id in messages:
            token = str(next(self._counter))
            future: asyncio.Future[bytes] = loop.create_future()
            self._pending[token] = future
            tokens.append(token)
            futures.append(future)
            try:
                await self._nc.publish(
                    subject,
                    payload,
                    reply=f"{self._prefix}.{token}",
                    headers={"Nats-Msg-Id": msg_id},
                )
            except Exception as exc:  # not sent (the connection is closing): fails alone
                future.set_exception(PublishError(f"not sent: {exc!r}"))
        timer = loop.call_later(timeout_s, _expire_all, futures)
        try:
            replies = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            timer.cancel()
            for token in tokens:
                self._pending.pop(token, None)
        outcomes: list[Exception | None] = []
        for reply in replies:
            try:
                if isinstance(reply, BaseException):
                    raise reply
                _stored(reply)
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


def _stored(reply: bytes) -> bool:
    """Whether the stream had the message already (a duplicate); raises if it refused."""
    ack = _decode_ack(reply)
    if ack.error is not None or not ack.stream:
        raise PublishError(f"JetStream refused the message: {ack.error}")
    return ack.duplicate


def _expire_all(futures: Sequence[asyncio.Future[bytes]]) -> None:
    for future in futures:
        _expire(future)


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(PublishError("no acknowledgement from JetStream in time"))
