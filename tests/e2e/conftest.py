"""A query service process over an index filled from the samples by the real pipeline."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from shared.settings import Settings
from tests.conftest import REPO, Namespace
from tests.pipeline import fill_from_samples
from tests.processes import free_port


@dataclass(frozen=True)
class QueryService:
    url: str
    namespace: Namespace


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"query service exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("query service did not become ready")


@pytest.fixture
async def samples(redis: Redis, es: AsyncElasticsearch, settings: Settings) -> None:
    await fill_from_samples(redis, es, settings)


@contextlib.contextmanager
def query_process(**env: str) -> Iterator[str]:
    """`caravan query` as a process of its own on a free port, with `env` added to the
    test's environment, once ready; its URL."""
    port = free_port()
    env = {**os.environ, "CARAVAN_QUERY_PORT": str(port), "CARAVAN_LOG_LEVEL": "WARNING", **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "query"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def query_service(samples: None, namespace: Namespace) -> Iterator[QueryService]:
    with query_process(CARAVAN_QUERY_RATE_LIMIT="0") as url:
        yield QueryService(url, namespace)
