"""A NATS cluster of real ``nats-server`` processes on loopback, for tests that kill and
restart one node (see ``libs.local.embedded.start_nats_cluster``)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from libs.local import embedded


class NatsCluster:
    def __init__(self, data_dir: Path, n: int = 3) -> None:
        self.nodes = embedded.start_nats_cluster(data_dir, n)

    @property
    def url(self) -> str:
        """Every node, comma-separated: what ``NATS_URL`` takes."""
        return ",".join(node.url for node in self.nodes)

    def index(self, server_name: str) -> int:
        """The node called ``server_name`` (n0, n1, …)."""
        return [node.name for node in self.nodes].index(f"nats-{server_name}")

    def streams(self, consumers: bool = False) -> dict[str, dict[str, Any]]:
        """Each stream's monitoring details (cluster, state; ``consumers`` too) as its
        leader reports them: only a node that says it leads the stream is believed (the
        others may still name a dead leader, and only the leader knows whether its
        followers are current). A stream without a live leader is missing."""
        query = "/jsz?streams=true" + ("&consumers=true" if consumers else "")
        found: dict[str, dict[str, Any]] = {}
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                data = embedded.get_json(node.monitor_url + query)
            except OSError:  # not listening yet (just restarted)
                continue
            for account in data.get("account_details") or []:
                for stream in account.get("stream_detail") or []:
                    if node.name == f"nats-{(stream.get('cluster') or {}).get('leader')}":
                        found[stream["name"]] = stream
        return found

    def leader(self, stream: str) -> str:
        """The server name of the stream's live leader ("" while there is none)."""
        cluster = self.streams().get(stream, {}).get("cluster") or {}
        return str(cluster.get("leader") or "")

    def current(self, stream: str, replicas: int) -> bool:
        """Whether the stream has a leader and ``replicas - 1`` followers, all current."""
        cluster = self.streams().get(stream, {}).get("cluster") or {}
        followers = cluster.get("replicas") or []
        return bool(cluster.get("leader")) and (
            len(followers) == replicas - 1 and all(f.get("current") for f in followers)
        )

    def healthy(self, index: int) -> bool:
        """The node's full health check (JetStream, and its streams caught up)."""
        try:
            return embedded.nats_healthy(self.nodes[index].monitor_url)
        except OSError:
            return False

    def kill(self, index: int) -> None:
        """SIGKILL: no flush, no goodbye to the routes — a crashed machine."""
        node = self.nodes[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.popen.pid, signal.SIGKILL)
        node.popen.wait(10)

    def restart(self, index: int) -> None:
        """The killed node again: same name, ports and store directory."""
        self.nodes[index] = embedded.restart(self.nodes[index])

    def stop(self) -> None:
        embedded.stop_all(self.nodes)
