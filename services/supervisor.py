"""`caravan run`: the whole system on one machine, each service its own process.

Starts the local Redis and Elasticsearch (unless REDIS_URL / ELASTICSEARCH_URL
point elsewhere), then ingest, ratefeed, indexer and query on the bundled
samples, waits until a search returns hits and prints where to look. It
supervises the services as docker compose's `restart: always` does: a service
that exits is reported and started again after a backoff, while the others keep
running. Ctrl-C (or SIGTERM) stops everything it started, services first, and
exits 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from shared.backoff import Backoff
from shared.settings import QuerySettings

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "deploy" / "local"
SERVICES = ("indexer", "query", "ingest", "ratefeed")
EXAMPLE_QUERY = "WildFly"
STARTUP_TIMEOUT = 180.0
# How often exits are looked for and a stop request is noticed.
TICK = 0.2
# A service gets this long after SIGTERM (its own grace is 25 s by default) before SIGKILL.
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class RestartPolicy:
    """When a service that exited starts again.

    The delay follows the one backoff policy (shared/backoff.py) from
    `first_delay` up to `max_delay`, so a service that cannot start does not
    spin and services that fell together (Redis went away) do not come back in
    lock-step. A run that lasted `reset_after`
    seconds ends the streak: the next exit is restarted quickly again.
    """

    first_delay: float = 1.0
    max_delay: float = 30.0
    reset_after: float = 60.0


@dataclass(frozen=True)
class Restart:
    streak: int
    """Restarts in a row, this one included."""
    delay: float
    """Seconds to wait before starting the service again."""


def plan_restart(policy: RestartPolicy, previous_streak: int, uptime: float) -> Restart:
    """The restart of a service that exited after running `uptime` seconds."""
    streak = 1 if uptime >= policy.reset_after else previous_streak + 1
    return Restart(streak, restart_delay(policy, streak))


def restart_delay(policy: RestartPolicy, streak: int) -> float:
    return Backoff(policy.first_delay, policy.max_delay).delay(streak)


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT
) -> None:
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
            process.wait()


def describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def say(message: str) -> None:
    print(f"caravan run: {message}", file=sys.stderr, flush=True)


@dataclass
class _Service:
    name: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    streak: int = 0
    restart_at: float = 0.0


class Supervisor:
    """The service processes, each started again by `policy` whenever it exits."""

    def __init__(self, env: dict[str, str], policy: RestartPolicy) -> None:
        self._env = env
        self._policy = policy
        self._services = [_Service(name) for name in SERVICES]

    def start_all(self) -> None:
        for service in self._services:
            self._start(service)

    def check(self) -> None:
        """Reports the services that exited and starts those whose delay is over."""
        now = time.monotonic()
        for service in self._services:
            if service.process is None:
                if now >= service.restart_at:
                    self._start(service)
                continue
            returncode = service.process.poll()
            if returncode is None:
                continue
            uptime = now - service.started_at
            restart = plan_restart(self._policy, service.streak, uptime)
            service.process, service.streak = None, restart.streak
            service.restart_at = now + restart.delay
            say(
                f"{service.name} exited ({describe_exit(returncode)}) after {uptime:.1f} s; "
                f"restarting in {restart.delay:.1f} s (restart {restart.streak} in a row)"
            )

    def stop_all(self) -> None:
        stop_processes([s.process for s in self._services if s.process is not None])

    def _start(self, service: _Service) -> None:
        # A process group of its own: a Ctrl-C at the terminal reaches only this
        # supervisor, which stops the services itself, in order and once.
        service.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{service.name}"], env=self._env, process_group=0
        )
        service.started_at = time.monotonic()
        say(f"started {service.name} (pid {service.process.pid})")


class _StopRequest:
    """Set by SIGINT and SIGTERM and polled by the loops: a flag, not an exception,
    so a signal never interrupts a process start or a stop half-way."""

    requested = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def run_local(query: QuerySettings) -> int:
    """Supervise the services; `query` says where the API they start listens."""
    env = dict(os.environ)
    infrastructure: list[list[str]] = []
    if "REDIS_URL" not in env:
        infrastructure.append([str(SCRIPTS / "redis.sh"), "start", "run", "6379"])
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    if "ELASTICSEARCH_URL" not in env:
        infrastructure.append([str(SCRIPTS / "elasticsearch.sh"), "start", "run", "9200"])
        env["ELASTICSEARCH_URL"] = "http://127.0.0.1:9200"
    env.setdefault("CARAVAN_INGEST_SOURCES", str(REPO / "samples" / "sources.toml"))
    env.setdefault("CARAVAN_RATEFEED_PROVIDERS", str(REPO / "samples" / "rates.toml"))

    stop = _StopRequest()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    supervisor = Supervisor(env, RestartPolicy())
    started: list[list[str]] = []
    try:
        for command in infrastructure:
            started.append(command)
            if subprocess.run(command, check=False).returncode != 0 and not stop.requested:
                say(f"{Path(command[0]).name} could not start its server; stopping")
                return 1
            if stop.requested:
                return 0
        supervisor.start_all()
        _supervise(supervisor, stop, query)
        return 0
    finally:
        say("stopping")
        supervisor.stop_all()
        for command in reversed(started):
            subprocess.run([command[0], "stop", *command[2:]], check=False)


def _supervise(supervisor: Supervisor, stop: _StopRequest, settings: QuerySettings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    waiting_until: float | None = time.monotonic() + STARTUP_TIMEOUT
    next_probe = 0.0
    # A short timeout: the probe runs in the supervision loop.
    with httpx.Client(timeout=2) as client:
        while not stop.requested:
            supervisor.check()
            now = time.monotonic()
            if waiting_until is not None and now >= next_probe:
                next_probe = now + 1
                if viewing := _search_hits(client, base):
                    waiting_until = None
                    print(
                        f"\nCaravan is running ({viewing}).\n"
                        f"  Search:      {base}/api/search?q={EXAMPLE_QUERY}\n"
                        f"  Quotes:      {base}/api/quotes/latest\n"
                        f"  API docs:    {base}/docs\n"
                        f"  From a shell: caravan search {EXAMPLE_QUERY}\n"
                        "Press Ctrl-C to stop.\n",
                        flush=True,
                    )
                elif now > waiting_until:
                    waiting_until = None
                    say(
                        f"no search hits within {STARTUP_TIMEOUT:.0f} s; see the logs above "
                        "(the services keep running)"
                    )
            time.sleep(TICK)


def _search_hits(client: httpx.Client, base: str) -> str | None:
    try:
        found = client.get(f"{base}/api/search", params={"q": EXAMPLE_QUERY}).json()
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(found, dict) or not found.get("total"):
        return None
    return (
        f"Viewing results {found['from']} - {found['to']} of {found['total']} for {EXAMPLE_QUERY!r}"
    )
