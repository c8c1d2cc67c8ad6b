"""Ports and processes of the tests that run Caravan as separate processes."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterable


def free_port() -> int:
    """A port free right now on 127.0.0.1, for a process under test to listen on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM every process still running, then wait for each, killing what outlasts
    `timeout`: all are signalled before any wait, so their graceful shutdowns overlap."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
