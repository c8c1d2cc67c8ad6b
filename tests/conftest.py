"""Fixtures shared by the integration and end-to-end tests.

They need the real Redis and Elasticsearch that `deploy/local/test.sh` starts
(REDIS_URL, ELASTICSEARCH_URL). Each test gets its own stream and index prefix,
so tests never see each other's data and nothing needs flushing.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import threading
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from shared.clients import make_elasticsearch, make_redis
from shared.index import IndexNames
from shared.settings import CommonSettings, ElasticsearchSettings, RedisSettings, Settings
from shared.streams import Streams

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO / "samples" / "realdata"
# The loop every async test and fixture runs on (asyncio_default_test_loop_scope).
_LOOPS: list[asyncio.AbstractEventLoop] = []


@dataclass(frozen=True)
class Namespace:
    stream_prefix: str
    index_prefix: str

    @property
    def streams(self) -> Streams:
        return Streams(CommonSettings(stream_prefix=self.stream_prefix))

    @property
    def articles(self) -> str:
        return IndexNames(self.index_prefix).articles

    @property
    def quotes(self) -> str:
        return IndexNames(self.index_prefix).quotes


def _require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite with `make test` (deploy/local/test.sh)")
    return value


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> Namespace:
    token = uuid4().hex[:10]
    ns = Namespace(stream_prefix=f"test-{token}:", index_prefix=f"test-{token}-")
    # For the services a test starts as processes: the environment is their interface.
    # Services run in process get `settings` instead.
    monkeypatch.setenv("CARAVAN_STREAM_PREFIX", ns.stream_prefix)
    monkeypatch.setenv("CARAVAN_INDEX_PREFIX", ns.index_prefix)
    monkeypatch.setenv("CARAVAN_LOG_FORMAT", "console")
    return ns


@pytest.fixture
def settings(namespace: Namespace) -> Settings:
    """The settings of services run in process: the test's namespace on the test servers.

    A test changes what it needs with `dataclasses.replace` (and `model_copy` for one
    value of a group), never through the environment.
    """
    return replace(
        Settings.from_env(),
        common=CommonSettings(
            stream_prefix=namespace.stream_prefix,
            index_prefix=namespace.index_prefix,
            log_format="console",
        ),
        redis=RedisSettings(url=_require("REDIS_URL")),
        elasticsearch=ElasticsearchSettings(url=_require("ELASTICSEARCH_URL")),
    )


@pytest.fixture
async def redis(namespace: Namespace) -> AsyncIterator[Redis]:
    client = make_redis(RedisSettings(url=_require("REDIS_URL")))
    yield client
    keys = [key async for key in client.scan_iter(match=f"{namespace.stream_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def es(namespace: Namespace) -> AsyncIterator[AsyncElasticsearch]:
    client = make_elasticsearch(ElasticsearchSettings(url=_require("ELASTICSEARCH_URL")))
    yield client
    # Deleting by wildcard is refused (action.destructive_requires_name): name them.
    indices = await client.indices.get(index=f"{namespace.index_prefix}*", allow_no_indices=True)
    if indices:
        await client.indices.delete(index=",".join(indices))
    templates = await client.options(ignore_status=404).indices.get_index_template(
        name=f"{namespace.index_prefix}*"
    )
    for template in templates.get("index_templates", []):
        await client.indices.delete_index_template(name=template["name"])
    await client.close()


@pytest.fixture(scope="session", autouse=True)
async def _session_loop() -> None:
    _LOOPS.append(asyncio.get_running_loop())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test stopped by pytest-timeout shows its tasks' stacks: the main thread's alone
    shows the event loop waiting, never what it waits for."""
    report = yield
    if call.excinfo is not None and "pytest-timeout" in str(call.excinfo.value) and _LOOPS:
        stacks = "\n\n".join(map(_awaiting, asyncio.all_tasks(_LOOPS[0])))
        report.sections.append(("asyncio tasks at the timeout", stacks))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """The run ends, with every thread's stack, when a test outlives twice its timeout:
    pytest-timeout's signal can land in a loop callback, which asyncio logs and drops,
    and the test would hang on for as long as CI lets it."""
    limit = float(item.config.getini("timeout") or 0)
    guard = threading.Timer(2 * limit, _end_the_run, (item,)) if limit else None
    if guard is not None:
        guard.daemon = True
        guard.start()
    try:
        return (yield)
    finally:
        if guard is not None:
            guard.cancel()


def _end_the_run(item: pytest.Item) -> None:
    # Out of pytest's capture first (as pytest-timeout's thread method does): what is
    # written to a capture's file is lost with the process.
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n{item.nodeid} outlived twice its timeout: the run ends here\n")
    faulthandler.dump_traceback(all_threads=True)
    os._exit(1)


def _awaiting(task: asyncio.Task[Any]) -> str:
    """A task and the chain of awaits it is suspended in, outermost first."""
    lines = [repr(task)]
    awaited: Any = task.get_coro()
    while awaited is not None and (frame := getattr(awaited, "cr_frame", None)) is not None:
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = awaited.cr_await
    return "\n".join(lines)
