"""`caravan run` as its user meets it: a service killed under it comes back, and
Ctrl-C stops everything quietly. Run against the fault Redis and Elasticsearch
(named in the environment, so it starts neither), each process real."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

import httpx
import pytest

from tests.conftest import REPO
from tests.faults.conftest import Fixture
from tests.processes import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.faults


class Output:
    """A process's output, read as it comes, so a test waits on lines, not on time."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._closed = False
        self._changed = threading.Condition()
        # Drained all the time: a full pipe would block the supervisor and its services.
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for(
        self, pattern: str, *, after: int = 0, timeout: float = 60
    ) -> tuple[int, re.Match[str]]:
        """The first line at index `after` or later that matches, and its index."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self.lines)):
                    if found := re.search(pattern, self.lines[index]):
                        return index, found
                after = len(self.lines)
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    pytest.fail(
                        f"no line matching {pattern!r}; the output:\n" + "\n".join(self.lines[-80:])
                    )
                self._changed.wait(remaining)

    def until_closed(self, timeout: float = 60) -> list[str]:
        """Every line, once every writer has closed the pipe."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._closed, timeout):
                pytest.fail("the output stayed open")
            return list(self.lines)

    def json_line(
        self, event: str, service: str, *, after: int, timeout: float = 60
    ) -> tuple[int, dict[str, Any]]:
        """The first log record of `event` by `service` at index `after` or later."""
        while True:
            index, _ = self.wait_for(re.escape(json.dumps(event)), after=after, timeout=timeout)
            record: dict[str, Any] = json.loads(self.lines[index])
            if record.get("event") == event and record.get("service") == service:
                return index, record
            after = index + 1


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_service_is_restarted_and_ctrl_c_stops_all_quietly(world: Fixture) -> None:
    query_port = free_port()
    # Port 0: each worker's health server takes a free port and logs it.
    env = world.env(CARAVAN_HEALTH_PORT="0", CARAVAN_QUERY_PORT=str(query_port))
    run = subprocess.Popen(
        [sys.executable, "-m", "services", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    world.processes.append(run)
    assert run.stdout is not None
    output = Output(run.stdout)

    _, started = output.wait_for(r"started indexer \(pid (\d+)\)")
    killed_pid = int(started[1])
    running, _ = output.wait_for(r"Caravan is running \(Viewing results", timeout=180)

    os.kill(killed_pid, signal.SIGKILL)
    exited, _ = output.wait_for(
        r"indexer exited \(killed by SIGKILL\) after [\d.]+ s; restarting in [\d.]+ s "
        r"\(restart 1 in a row\)",
        after=running,
    )
    restarted, again = output.wait_for(r"started indexer \(pid (\d+)\)", after=exited)
    assert int(again[1]) != killed_pid
    _, record = output.json_line("service started", "indexer", after=restarted)
    wait_for(lambda: _ready(record["health_port"]), 60, "the new indexer to be ready")
    # The others never stopped: nothing but the indexer exited, and the API still answers.
    assert [line for line in output.lines if " exited (" in line] == [output.lines[exited]]
    assert _ready(query_port)

    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=60) == 0
    lines = output.until_closed()
    assert [line for line in lines if " exited (" in line] == [lines[exited]], (
        "a service stopped on request was reported as exited"
    )
    assert "caravan run: stopping" in lines
    assert not [line for line in lines if "Traceback" in line]
