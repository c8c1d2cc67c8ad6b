"""`caravan run`: the whole system on one machine, each service its own process.

Starts the local Redis and Elasticsearch (unless REDIS_URL / ELASTICSEARCH_URL
point elsewhere), then ingest, ratefeed, indexer and query on the bundled
samples, waits until a search returns hits, prints where to look, and on Ctrl-C
(or SIGTERM) stops everything it started, services first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from shared.settings import QuerySettings

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "deploy" / "local"
SERVICES = ("indexer", "query", "ingest", "ratefeed")
EXAMPLE_QUERY = "WildFly"
STARTUP_TIMEOUT = 180.0


def run_local() -> int:
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

    signal.signal(signal.SIGTERM, _interrupt)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for command in infrastructure:
            subprocess.run(command, check=True)
        for name in SERVICES:
            processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"],
                                               env=env)
        settings = QuerySettings()
        base = f"http://{settings.host}:{settings.port}"
        viewing = _wait_for_hits(base, processes)
        print(f"\nCaravan is running ({viewing}).\n"
              f"  Search:      {base}/api/search?q={EXAMPLE_QUERY}\n"
              f"  Quotes:      {base}/api/quotes/latest\n"
              f"  API docs:    {base}/docs\n"
              f"  From a shell: caravan search {EXAMPLE_QUERY}\n"
              "Press Ctrl-C to stop.\n", flush=True)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        failed = [name for name, p in processes.items() if p.poll() is not None]
        print(f"caravan run: {', '.join(failed)} exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(processes)
        for command in reversed(infrastructure):
            subprocess.run([command[0], "stop", *command[2:]], check=False)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_for_hits(base: str, processes: dict[str, subprocess.Popen[bytes]]) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes.values()):
                msg = "a service exited during start-up; see its log above"
                raise RuntimeError(msg)
            try:
                found = client.get(f"{base}/api/search", params={"q": EXAMPLE_QUERY}).json()
            except (httpx.HTTPError, ValueError):
                found = {}
            if found.get("total"):
                return f"Viewing results {found['from']} - {found['to']} of {found['total']} " \
                       f"for {EXAMPLE_QUERY!r}"
            time.sleep(1)
    msg = f"no search hits within {STARTUP_TIMEOUT:.0f}s"
    raise TimeoutError(msg)


def _stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
