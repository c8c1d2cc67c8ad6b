"""Ports and processes of the tests that run Caravan as separate processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

# One way to stop what a test started: the one `caravan run` uses.
from services.supervisor import stop_processes

__all__ = ["caravan", "free_port", "local_dir", "stop_processes"]


def free_port() -> int:
    """A port free right now on 127.0.0.1, for a process under test to listen on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_dir() -> Path:
    """Where deploy/local/common.sh keeps the local servers' state (CARAVAN_LOCAL_DIR)."""
    if local := os.environ.get("CARAVAN_LOCAL_DIR"):
        return Path(local)
    if os.getuid() == 0:
        return Path("/var/lib/caravan")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "caravan"


def caravan(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`caravan ARGS` as an operator runs it, with `env`: its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
