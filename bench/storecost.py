"""What each database write of an event costs SecantusDB, by operation and index layout.

The floor under the CPU per event: one SecantusDB process of its own per layout, the
event log's real entries (the bench's order, its headers and search terms) inserted in
batches of 100 as the projector does, and the contacts' writes as the mapper does them;
the server's CPU (``/proc``) per document. ``python -m bench.storecost`` alone, or a
section of ``make bench``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from bench.payload import ORDER, SIGNED_HEADERS
from libs.local import embedded
from services.config.projector import searchable

Doc = dict[str, Any]
COUNT = 2000  # documents measured per case (after 200 to warm up)
BATCH = 100
_HEADERS = {
    "Host": "127.0.0.1:8080",
    "Content-Type": "application/json",
    "Content-Length": str(len(ORDER)),
    "User-Agent": "Python/3.11 aiohttp/3.13",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    **SIGNED_HEADERS,
}
_CONNECTOR = "0" * 32


@dataclass(frozen=True)
class Cost:
    case: str
    cpu_us_per_doc: float
    index_keys_per_doc: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def entry(n: int) -> Doc:
    """A log entry as the projector writes it (succeeded, one filter step): its terms
    and expiry by the projector's own ``searchable``."""
    doc: Doc = {
        "_id": f"{n:032x}",
        "connector_id": _CONNECTOR,
        "status": "succeeded",
        "received_at": datetime.now(UTC),
        "request": {"method": "POST", "headers": _HEADERS, "size": len(ORDER)},
        "body": json.loads(ORDER),
        "raw": ORDER,
        "custom_variables": {"n": str(n)},
        "execution": [{"step_id": "is-order", "status": "succeeded", "output": None}],
    }
    return searchable(doc, retention_days=30)


def contact(n: int, visit: int = 1) -> Doc:
    now = datetime.now(UTC)
    return {
        "_id": f"k{n:031x}",
        "mobile": f"+3519{n:08d}",
        "email": f"c{n}@example.com",
        "name": "Ana Silva",
        "attributes": {"visits": visit},
        "created_at": now,
        "updated_at": now,
    }


def _batches(docs: list[Doc], write: Callable[[list[Doc]], None]) -> None:
    for k in range(0, len(docs), BATCH):
        write(docs[k : k + BATCH])


def _insert(col: Collection[Doc]) -> Callable[[list[Doc]], None]:
    def write(docs: list[Doc]) -> None:
        with contextlib.suppress(BulkWriteError):  # refusing duplicates is measured too
            col.insert_many(docs, ordered=False)

    return write


def _update_visits(col: Collection[Doc]) -> Callable[[list[Doc]], None]:
    def write(docs: list[Doc]) -> None:
        col.bulk_write(
            [UpdateOne({"_id": d["_id"]}, {"$set": {"attributes.visits": 2}}) for d in docs],
            ordered=False,
        )

    return write


def _find(col: Collection[Doc]) -> Callable[[list[Doc]], None]:
    def read(docs: list[Doc]) -> None:
        list(col.find({"mobile": {"$in": [d["mobile"] for d in docs]}}))

    return read


class _Server:
    def __init__(self, standalone: bool) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="hookline-storecost-")
        self.proc = embedded.start_mongo(Path(self.tmp.name), standalone=standalone)
        self.client: pymongo.MongoClient[Doc] = pymongo.MongoClient(self.proc.url)
        self.db = self.client["storecost"]

    def measure(self, docs: list[Doc], op: Callable[[list[Doc]], None]) -> float:
        """Server CPU in us per document of ``op`` over ``docs`` (after a warm-up)."""
        _batches(docs[:200], op)
        before = _cpu_s(self.proc.popen.pid)
        _batches(docs[200:], op)
        return round(1e6 * (_cpu_s(self.proc.popen.pid) - before) / (len(docs) - 200), 1)

    def close(self) -> None:
        self.client.close()
        embedded.stop(self.proc)
        self.tmp.cleanup()


_LOG_INDEXES: dict[str, list[Any]] = {
    "time": [[("connector_id", 1), ("received_at", -1)]],
    "ttl": [["expire_at"]],
    "search": [[("connector_id", 1), ("terms", 1), ("received_at", -1)]],
}


def _log_case(server: _Server, name: str, layout: tuple[str, ...], count: int) -> Cost:
    col = server.db[f"events_{len(layout)}_{time.monotonic_ns()}"]
    for part in layout:
        for keys in _LOG_INDEXES[part]:
            if part == "ttl":
                col.create_index(keys[0], expireAfterSeconds=0)
            else:
                col.create_index(keys)
    docs = [entry(n) for n in range(count)]
    keys = 1 + sum({"time": 1, "ttl": 1, "search": len(docs[0]["terms"])}[p] for p in layout)
    return Cost(name, server.measure(docs, _insert(col)), keys)


def _on_own_server(standalone: bool, case: Callable[[_Server], list[Cost]]) -> list[Cost]:
    """``case`` on a SecantusDB of its own: no case pays for another's data or caches."""
    server = _Server(standalone=standalone)
    try:
        return case(server)
    finally:
        server.close()


def _contacts(server: _Server, count: int) -> list[Cost]:
    contacts = server.db["contacts"]
    contacts.create_index("mobile", unique=True, sparse=True)
    contacts.create_index([("email", 1), ("created_at", 1)])
    people = [contact(n) for n in range(count)]
    return [
        Cost("contact, insert new", server.measure(people, _insert(contacts)), 3),
        Cost("contact, insert refused (exists)", server.measure(people, _insert(contacts)), 0),
        Cost("contact, find by mobile ($in)", server.measure(people, _find(contacts)), 0),
        Cost(
            "contact, update one field (changed)",
            server.measure(people, _update_visits(contacts)),
            0,
        ),
    ]


def measure(count: int = COUNT + 200) -> list[Cost]:
    log = ("time", "ttl", "search")
    cases: list[tuple[bool, str, tuple[str, ...]]] = [
        (False, "log entry, _id only", ()),
        (False, "log entry, _id + time + TTL", ("time", "ttl")),
        (False, "log entry, as stored (+ search terms)", log),
        (True, "log entry, as stored, standalone (no oplog)", log),
    ]
    costs: list[Cost] = []
    for standalone, name, layout in cases:
        costs += _on_own_server(
            standalone, functools.partial(_log_cases, name=name, layout=layout, count=count)
        )
    return costs + _on_own_server(False, functools.partial(_contacts, count=count))


def _log_cases(server: _Server, *, name: str, layout: tuple[str, ...], count: int) -> list[Cost]:
    return [_log_case(server, name, layout, count)]


def report(costs: list[dict[str, Any]]) -> None:
    if not costs:
        return
    print("\n  SecantusDB CPU per document written (its own process, batches of 100):")
    for cost in costs:
        keys = f"{cost['index_keys_per_doc']:>3} index keys" if cost["index_keys_per_doc"] else ""
        print(f"    {cost['case']:<44} {cost['cpu_us_per_doc']:>7.0f} us  {keys}")
    by = {c["case"]: c for c in costs}
    stored, plain = (
        by.get("log entry, as stored (+ search terms)"),
        by.get("log entry, _id + time + TTL"),
    )
    if stored and plain:
        terms = stored["index_keys_per_doc"] - plain["index_keys_per_doc"]
        per_key = (stored["cpu_us_per_doc"] - plain["cpu_us_per_doc"]) / max(terms, 1)
        print(f"    each search term (an index key): {per_key:.0f} us")


if __name__ == "__main__":
    report([c.to_dict() for c in measure()])
