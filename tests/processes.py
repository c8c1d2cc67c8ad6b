"""Ports and processes of the tests that run Caravan as separate processes."""

from __future__ import annotations

import socket

# One way to stop what a test started: the one `caravan run` uses.
from services.supervisor import stop_processes

__all__ = ["free_port", "stop_processes"]


def free_port() -> int:
    """A port free right now on 127.0.0.1, for a process under test to listen on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
