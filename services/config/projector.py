"""Projections: received events and execution logs → the MongoDB event log and stats.

Two durable consumers, each handling a batch with one write for the log and one for
the counters.  Counting is tied to document creation and first verdict, as reported by
the store, so a redelivered batch is written again but not counted again.

An event's log entry is written once, whole, when its verdict comes within
``grace_s`` of its arrival (the usual case): the received projection keeps an event
younger than that waiting, its message unacknowledged, until the grace is over
(:meth:`Projector.flush`); by then the verdict has created the entry.  A verdict this
process wrote is remembered for a while, so the waiting message is then acked without
a write; one it did not write (another replica's, or before a restart) makes the
received insert a skipped duplicate.  Each received message is delivered once and
acked once, and the entry costs one insert instead of an insert and an update.  A
waiting message's payload is not kept (the stream has it): one whose verdict has not
come when its wait ends is nak'ed, delivered again and written then, so an event still
waiting for its verdict is in the log as ``received`` after ``grace_s``, at the cost of
a second delivery of that message only.  A crash while messages wait only delays them
(they are redelivered after the ack wait, which bounds the wait too).

No message that ingest answered 2xx for is ever dropped: an entry that cannot be
stored as it is (a parsed form the database refuses) is stored degraded (the raw
bytes and the reason, without the parsed parts), and a message that is not even
ours to decode keeps what can be read of it.  Nothing is terminated unlogged.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import msgspec

from libs.domain import events, jsonvalue, ports, search
from libs.infra import logging as hlog
from libs.infra.mongo import store as hmongo

_received = events.decoder(events.EventReceived).decode
_logs: Any = jsonvalue.Decoder(events.LogStreamEvent).decode  # type: ignore[arg-type]


class Delivered(Protocol):
    @property
    def num_delivered(self) -> int: ...

    @property
    def timestamp(self) -> datetime: ...  # when the stream stored the message


class Delivery(Protocol):
    """A delivered message as the projections see it: a JetStream message (``Delivery``),
    or ``tests.support.memory.MemoryMsg`` in the unit tests."""

    data: bytes  # emptied while the message waits (see Projector.on_received)

    @property
    def subject(self) -> str: ...

    @property
    def metadata(self) -> Delivered: ...

    async def ack(self) -> None: ...

    async def nak(self, delay: float | None = None) -> None: ...

    async def term(self) -> None: ...


class _Id(msgspec.Struct):
    event_id: str = ""


_event_id_of = msgspec.json.Decoder(_Id).decode


def _event_id(msg: Delivery) -> str:
    """A received message's event id, read without decoding the rest ("" if none)."""
    try:
        return _event_id_of(msg.data).event_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""


def received_doc(ev: events.EventReceived) -> dict[str, Any]:
    return {
        "_id": ev.event_id,
        "connector_id": ev.connector_id,
        "connector_version": ev.connector_version,
        "correlation_id": ev.correlation_id,
        "received_at": ev.occurred_at,
        "status": "received",
        "request": msgspec.to_builtins(ev.request),
        "body": ev.body,
        "custom_variables": ev.custom_variables,
        "idempotency_key": ev.idempotency_key,
        "replay_of": ev.replay_of,
        "raw": ev.raw,
    }


# What a degraded entry leaves out, in two steps: first the parsed parts (the usual
# trouble: a value the database cannot hold), then what is left that a sender chose.
_PARSED = ("body", "custom_variables", "mapping", "drift", "execution")
_SENT = ("raw", "request")


def degraded(doc: dict[str, Any], reason: str, level: int) -> dict[str, Any]:
    """``doc`` without what could not be stored, saying so; ``level`` 1 or 2."""
    out = {k: v for k, v in doc.items() if k not in _PARSED}
    out["degraded"] = reason[:500]
    if "execution" in doc:  # keep what each step did, not what it returned
        out["execution"] = [
            {k: s.get(k) for k in ("step_id", "type", "status", "error")}
            for s in doc["execution"] or []
        ]
    if level > 1:
        for key in _SENT:
            out.pop(key, None)
        if isinstance(doc.get("request"), dict):
            out["request"] = {
                k: v for k, v in doc["request"].items() if k in ("method", "size", "content_type")
            }
        out["execution"] = [{"step_id": str(s.get("step_id"))} for s in out.get("execution", [])]
    return out


def salvaged(data: bytes, reason: str) -> dict[str, Any] | None:
    """A degraded entry from a message its decoder refused, if it names an event."""
    try:
        value = jsonvalue.decode(data)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    inner = value.get("received")
    ev: dict[str, Any] = inner if isinstance(inner, dict) else value
    if not isinstance(ev.get("event_id"), str) or not isinstance(ev.get("connector_id"), str):
        return None
    status = value.get("status") if inner is ev else "received"
    try:
        received_at = msgspec.convert(ev.get("occurred_at"), datetime)
    except msgspec.ValidationError:
        received_at = events.utcnow()
    return {
        "_id": ev["event_id"],
        "connector_id": ev["connector_id"],
        "connector_version": ev.get("connector_version")
        if isinstance(ev.get("connector_version"), int)
        else 0,
        "correlation_id": str(ev.get("correlation_id") or ev["event_id"]),
        "received_at": received_at,
        "status": status if status in events.EVENT_STATUSES else "failed",
        "degraded": f"undecodable message: {reason}"[:500],
    } | ({"outcome_at": events.utcnow()} if inner is ev else {})


def notice_doc(notice: events.IngestNotice) -> dict[str, Any]:
    """The log entry of a request that never became an event: ``rejected`` (the reason,
    the request and its raw bytes) or ``handshake`` (what was answered)."""
    assert notice.request is not None
    return {
        "_id": notice.event_id,
        "connector_id": notice.connector_id,
        "connector_version": notice.connector_version,
        "correlation_id": notice.event_id,
        "received_at": notice.occurred_at,
        "status": notice.kind,
        "error": notice.reason if notice.kind == "rejected" else None,
        "reason": notice.code,
        "http_status": notice.status,
        "note": notice.reason if notice.kind == "handshake" else None,
        "request": msgspec.to_builtins(notice.request),
        "custom_variables": notice.request.query,
        "raw": notice.raw,
        "raw_truncated": notice.raw_truncated,
    }


def searchable(doc: dict[str, Any], retention_days: float) -> dict[str, Any]:
    """The entry with its search terms (``libs.domain.search``) and the time the log's
    TTL index removes it (``expire_at``)."""
    request = doc.get("request")
    headers = request.get("headers") if isinstance(request, dict) else None
    terms, truncated = search.event_terms(
        status=doc.get("status"),
        body=doc.get("body"),
        headers=headers if isinstance(headers, dict) else None,
        custom_variables=doc.get("custom_variables"),
    )
    if doc.get("dead_lettered"):  # found by status=dead_lettered too
        terms.append(search.status_term("dead_lettered"))
    doc["terms"] = terms
    if truncated:
        doc["terms_truncated"] = True
    received_at = doc.get("received_at")
    if isinstance(received_at, datetime):
        doc["expire_at"] = received_at + timedelta(days=retention_days)
    return doc


def outcome_doc(ev: events.ExecutionLogged) -> dict[str, Any]:
    doc = received_doc(ev.received)
    doc.pop("status")
    doc.update(
        status=ev.status,
        outcome_at=ev.occurred_at,
        mapping=msgspec.to_builtins(ev.mapping) if ev.mapping else None,
        drift=msgspec.to_builtins(ev.drift) if ev.drift else None,
        execution=msgspec.to_builtins(ev.steps),
        error=ev.error,
        attempts=ev.attempts,
        executed_version=ev.connector_version,
    )
    if ev.dead_lettered:
        doc["dead_lettered"] = True
    return doc


class Projector:
    """Each handler writes a whole batch at once; a batch that fails for a reason other
    than the database being unreachable is retried message by message, and a message
    whose entry still cannot be stored is stored degraded (see :func:`degraded`)
    instead of blocking every message behind it forever."""

    def __init__(
        self,
        store: ports.ProjectionStore,
        *,
        grace_s: float = 0.0,
        max_wait_s: float = 15.0,
        projected: Callable[[str, int], None] = lambda _name, _count: None,
        retention_days: float = 30.0,
        clock: Callable[[], datetime] = events.utcnow,
    ) -> None:
        self.store = store
        self.grace_s = grace_s
        # A message waits no longer than this (half the ack wait: it is not redelivered
        # while it waits).
        self.max_wait_s = max_wait_s
        self.retention_days = retention_days  # unless the connector says otherwise
        self.projected = projected  # (projection, messages written)
        self.clock = clock
        # Messages waiting for their grace, by event id, with when each must be written
        # at the latest (only the message, without its payload: ~2.5 KB each kept whole,
        # ~0.6 KB so), and when each grace ends (a heap of ids; an id whose message was
        # settled meanwhile is skipped, and rebuilt when those outnumber the rest).
        self._held: dict[str, tuple[Delivery, datetime]] = {}
        self._waiting: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        # Event ids whose entry a verdict wrote here lately, with when: the newest
        # REMEMBERED within twice the longest wait.
        self._written: dict[str, datetime] = {}
        self._last_verdict: datetime | None = None

    def _due(self, msg: Delivery, now: datetime) -> datetime:
        """When a received message's entry is written unless its verdict comes first:
        its grace after ingest stored it (the stream's time, within a millisecond of
        ingest's: no need to decode it to know its age).  While verdicts are being
        written (the pipeline is alive, only behind), as late as ``max_wait_s`` after:
        its verdict most likely comes and writes the entry whole, once, instead of a
        received entry written first and updated then: under a backlog that doubled the
        database's work for each event behind it."""
        wait = self.grace_s
        recent = timedelta(seconds=max(self.grace_s, 1.0))
        if wait > 0 and self._last_verdict is not None and now - self._last_verdict <= recent:
            wait = max(wait, self.max_wait_s)
        return msg.metadata.timestamp + timedelta(seconds=wait)

    async def on_received(self, msgs: Sequence[Delivery]) -> None:
        now = self.clock()
        limit = now + timedelta(seconds=self.max_wait_s)  # not redelivered meanwhile
        ready, settled = [], []
        for msg in msgs:
            if (event_id := _event_id(msg)) in self._written:
                settled.append(msg)  # its verdict came first and wrote the entry whole
            elif msg.metadata.num_delivered > 1 or (due := self._due(msg, now)) <= now:
                ready.append(msg)
            elif event_id and event_id not in self._held:
                msg.data = b""  # its verdict most likely writes the entry; else redelivered
                self._held[event_id] = (msg, limit)
                heapq.heappush(self._waiting, (min(due, limit), next(self._order), event_id))
            else:
                ready.append(msg)  # undecodable, or a second message of one event
        await self._write_received(await self._entries(ready))
        await self._settled(settled)

    async def _entries(self, msgs: Sequence[Delivery]) -> list[tuple[Delivery, dict[str, Any]]]:
        pairs: list[tuple[Delivery, dict[str, Any]]] = []
        for msg in msgs:
            event = await _decode(msg, _received, pairs)
            if event is not None:
                pairs.append((msg, self._entry(received_doc(event), event.retention_days)))
        return pairs

    async def flush(self, *, everything: bool = False) -> int:
        """Give back the waiting messages whose grace is over (``everything``: all, when
        closing) unless their verdict already settled them: each is nak'ed, delivered
        again whole and written as received then.  Returns how many were given back."""
        now = self.clock()
        due: list[Delivery] = []
        while self._waiting and (everything or self._waiting[0][0] <= now):
            _, order, event_id = heapq.heappop(self._waiting)
            held = self._held.get(event_id)
            if held is None:
                continue  # settled when its verdict was written
            msg, limit = held
            later = min(self._due(msg, now), limit)
            if later > now and not everything:  # verdicts started flowing meanwhile
                heapq.heappush(self._waiting, (later, order, event_id))
                continue
            del self._held[event_id]
            due.append(msg)
        if len(self._waiting) > 2 * len(self._held) + 1024:  # mostly settled ids: rebuild
            self._waiting = [w for w in self._waiting if w[2] in self._held]
            heapq.heapify(self._waiting)
        self._forget_written(now - timedelta(seconds=2 * (self.grace_s + self.max_wait_s)))
        for msg in due:
            try:
                await msg.nak()
            except Exception as exc:  # NATS away: redelivered after the ack wait anyway
                hlog.get().warning("projector.nak_failed", error=repr(exc)[:300])
        if due:
            self.projected("projector-received-given-back", len(due))
        return len(due)

    def _forget_written(self, horizon: datetime) -> None:
        """Drop the verdicts written before ``horizon`` and the oldest past REMEMBERED:
        oldest first (the dict is in writing order), so each flush costs what it drops,
        not what is kept."""
        over = max(len(self._written) - REMEMBERED, 0)
        for event_id in list(itertools.islice(self._written, over)):
            del self._written[event_id]
        old = list(itertools.takewhile(lambda kv: kv[1] <= horizon, self._written.items()))
        for event_id, _ in old:
            del self._written[event_id]

    @property
    def waiting(self) -> int:
        return len(self._held)

    async def _settled(self, msgs: Sequence[Delivery]) -> None:
        """Ack received messages without a write: their verdict wrote the entry whole."""
        for msg in msgs:
            await msg.ack()
        if msgs:
            self.projected("projector-received-settled", len(msgs))

    async def _write_received(self, pairs: list[tuple[Delivery, dict[str, Any]]]) -> None:
        self._retain(pairs)
        await _isolating(pairs, self._received)
        self.projected("projector-received", len(pairs))

    def _entry(self, doc: dict[str, Any], retention_days: float | None) -> dict[str, Any]:
        return searchable(doc, retention_days or self.retention_days)

    def _retain(self, pairs: Sequence[tuple[Delivery, Any]]) -> None:
        """Entries salvaged from undecodable messages expire like the rest."""
        for _, item in pairs:
            if isinstance(item, dict) and "expire_at" not in item:
                at = item.get("received_at")
                if isinstance(at, datetime):
                    item["expire_at"] = at + timedelta(days=self.retention_days)

    async def _received(self, pairs: Sequence[tuple[Delivery, dict[str, Any]]]) -> None:
        docs = [doc for _, doc in pairs]
        new, kept_back = await _degrading(docs, self.store.record_received)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for doc in _one_per_event(docs):
            if doc["_id"] in new:
                counts[doc["connector_id"]]["received"] += 1
        await self.store.add_stats(counts)
        await _settle(pairs, kept_back)

    async def on_log(self, msgs: Sequence[Delivery]) -> None:
        pairs: list[tuple[Delivery, LogItem]] = []
        for msg in msgs:
            ev = await _decode(msg, _logs, pairs)
            if ev is None:
                continue
            if isinstance(ev, events.IngestNotice):
                logged = ev.request is not None and ev.kind != "duplicate"
                doc = self._entry(notice_doc(ev), ev.retention_days) if logged else None
                pairs.append((msg, doc or ev))
            elif ev.dry_run:
                pairs.append((msg, None))
            else:
                pairs.append((msg, self._entry(outcome_doc(ev), ev.received.retention_days)))
        self._retain(pairs)
        await _isolating(pairs, self._logs)
        self.projected("projector-logs", len(pairs))

    async def _logs(self, pairs: Sequence[tuple[Delivery, LogItem]]) -> None:
        outcomes: list[dict[str, Any]] = []
        requests: list[dict[str, Any]] = []  # rejected and handshake entries
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for _, item in pairs:
            if isinstance(item, events.IngestNotice):  # counted only (a duplicate)
                counts[item.connector_id][_NOTICE_STAT[item.kind]] += 1
            elif item is None:
                continue
            elif item["status"] in events.REQUEST_STATUSES:
                requests.append(item)
            else:
                outcomes.append(item)
        new, refused_back = await _degrading(requests, self.store.record_received)
        for doc in _one_per_event(requests):
            if doc["_id"] in new:  # counted once however often the notice comes
                counts[doc["connector_id"]][_NOTICE_STAT[doc["status"]]] += 1
        (first, created), kept_back = await _degrading(outcomes, self.store.record_outcomes)
        now = self.clock()
        settled: list[Delivery] = []  # received messages waiting for this verdict
        for doc in outcomes:
            if doc["_id"] not in kept_back:
                self._written.pop(doc["_id"], None)  # to the end: kept in writing order
                self._written[doc["_id"]] = now
                if (waiting := self._held.pop(doc["_id"], None)) is not None:
                    settled.append(waiting[0])
        if any(doc["_id"] not in kept_back for doc in outcomes):
            self._last_verdict = now
        kept_back |= refused_back
        for doc in _one_per_event(outcomes):
            if doc["_id"] in first:
                counts[doc["connector_id"]][
                    "failed" if doc["status"] == "failed" else "succeeded"
                ] += 1
            if doc["_id"] in created:  # the log overtook the received projection
                counts[doc["connector_id"]]["received"] += 1
        await self.store.add_stats(counts)
        await _settle(pairs, kept_back)
        await self._settled(settled)


# Verdicts remembered to ack a received message that comes after its verdict without a
# write (one that comes later is written: a duplicate-key insert, not counted): ~4 MiB.
REMEMBERED = 20_000

# The stats counter of each kind of notice.
_NOTICE_STAT = {"duplicate": "duplicates", "rejected": "rejected", "handshake": "handshakes"}

# A log stream message as the projection writes it: a notice (counted), an entry
# (written), or nothing to write (a dry-run's verdict, only acknowledged).
LogItem = events.IngestNotice | dict[str, Any] | None
T = TypeVar("T")
RETRY_UNSTORABLE_S = 60.0


async def _isolating(
    pairs: Sequence[tuple[Delivery, T]],
    write: Callable[[Sequence[tuple[Delivery, T]]], Awaitable[None]],
) -> None:
    if not pairs:
        return
    try:
        await write(pairs)
        return
    except UNREACHABLE:
        raise  # the database is away: the batch is redelivered after ack_wait
    except Exception as exc:
        hlog.get().warning("projector.batch_failed", error=_brief(exc), count=len(pairs))
    for msg, item in pairs:
        try:
            await write([(msg, item)])
            continue
        except UNREACHABLE:
            raise
        except Exception as exc:
            reason = _brief(exc)
        for level in (1, 2):
            if not isinstance(item, dict):
                break
            hlog.get().warning(
                "projector.degraded", event_id=item.get("_id"), error=reason, level=level
            )
            try:
                await write([(msg, degraded(item, reason, level))])  # type: ignore[list-item]
                break
            except UNREACHABLE:
                raise
            except Exception as again:
                reason = f"{reason}; then {_brief(again)}"
        else:
            # Not even the entry's ids could be stored: keep the message, try later.
            hlog.get().error("projector.unstorable", error=reason, subject=msg.subject)
            await msg.nak(delay=RETRY_UNSTORABLE_S)


async def _decode(
    msg: Delivery, decode: Callable[[bytes], T], pairs: list[tuple[Delivery, Any]]
) -> T | None:
    """The message's event; None when it does not decode, after adding the entry
    salvaged from it (if it names an event) to ``pairs``."""
    try:
        return decode(msg.data)
    except (msgspec.DecodeError, ValueError) as exc:
        doc = await _undecodable(msg, exc)
        if doc is not None:
            pairs.append((msg, doc))
        return None


async def _undecodable(msg: Delivery, exc: Exception) -> dict[str, Any] | None:
    """A degraded entry for a message its decoder refused; None (terminated, logged
    as an error) when it does not even name an event, so it was no event of ingest's."""
    doc = salvaged(msg.data, str(exc))
    if doc is None:
        hlog.get().error("projector.undecodable", error=str(exc), subject=msg.subject)
        await msg.term()
    else:
        hlog.get().warning("projector.salvaged", event_id=doc["_id"], error=str(exc))
    return doc


R = TypeVar("R", set[str], tuple[set[str], set[str]])


async def _degrading(
    docs: list[dict[str, Any]],
    record: Callable[[Sequence[dict[str, Any]], dict[str, str]], Awaitable[R]],
) -> tuple[R, set[str]]:
    """Write ``docs`` with ``record``; an entry the database refuses is written again
    degraded (twice at most, each time with less).  Returns what ``record`` says of the
    whole batch (the ids of the degraded writes merged in) and the ids that could not
    be written even so: their messages are kept for later, never dropped."""
    refused: dict[str, str] = {}
    result = await record(docs, refused)
    for level in (1, 2):
        if not refused:
            break
        by_id = {d["_id"]: d for d in docs}
        retry = [degraded(by_id[i], reason, level) for i, reason in refused.items()]
        for doc in retry:
            hlog.get().warning("projector.degraded", event_id=doc["_id"], error=doc["degraded"])
        refused = {}
        more = await record(retry, refused)
        result = _merge(result, more)  # type: ignore[assignment]
    return result, set(refused)


def _one_per_event(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first entry of each event id: a batch may hold a message twice (delivered
    again before the first was settled), and the store's ids count it once."""
    first: dict[str, dict[str, Any]] = {}
    for doc in docs:
        first.setdefault(doc["_id"], doc)
    return list(first.values())


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, set):
        return a | b
    return tuple(x | y for x, y in zip(a, b, strict=True))


async def _settle(pairs: Sequence[tuple[Delivery, Any]], kept_back: set[str]) -> None:
    """Ack every message written; one whose entry could not be written at all waits."""
    for msg, item in pairs:
        if isinstance(item, dict) and item.get("_id") in kept_back:
            hlog.get().error("projector.unstorable", event_id=item["_id"], subject=msg.subject)
            await msg.nak(delay=RETRY_UNSTORABLE_S)
        else:
            await msg.ack()


def _brief(exc: Exception) -> str:
    """What went wrong, short: a bulk write error's repr holds the whole document."""
    details = getattr(exc, "details", None)
    if isinstance(details, dict) and details.get("writeErrors"):
        first = details["writeErrors"][0]
        return f"{type(exc).__name__}: {first.get('errmsg', '')}"[:300]
    return repr(exc)[:300]


UNREACHABLE = hmongo.UNREACHABLE
