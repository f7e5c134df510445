"""``embedded.free_port``: the ports of a test's servers never coincide."""

from __future__ import annotations

import socket

from libs.local import embedded


def test_free_ports_are_distinct_and_free() -> None:
    """A cluster takes three ports per node from separate calls: a port offered twice
    (the kernel may, once its probe socket closes) made one node's cluster port another's
    monitor port."""
    ports = [embedded.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    for port in ports[:20]:  # and each can be listened on
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))
