"""Every service under its own Redis ACL user, as `caravan redis-users` prints them.

The four long-running services (ingest and the rate feed under their leases, the
indexer with its groups, dead letters and upkeep, the query service's live ticker)
run against the real Redis, each authenticated as its own user, and do all of
their work: nothing refused, in their answers or their logs. What a user must not
do, it cannot.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import cast
from uuid import uuid4

import httpx
import pytest
import redis as redis_sync
from elasticsearch import AsyncElasticsearch
from pydantic import SecretStr
from redis.asyncio import Redis

from services.redis_users import SERVICES, acl_rules
from shared import leases
from shared.clients import make_redis
from shared.consumer import redis_text
from shared.events import DeadLetter
from shared.health import redis_ready
from shared.leases import WorkShare
from shared.settings import CommonSettings, RedisSettings
from shared.streams import DATA_FIELD, Streams
from tests.chaos.workload import FEEDS, STEP, WINDOW, Workload, bank_document, prices, quotes
from tests.conftest import REALDATA, REPO, Namespace, _require
from tests.logs import Said
from tests.loopback import LoopbackServer, static
from tests.processes import caravan, free_port, stop_processes
from tests.waiting import until, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = f"users-{uuid4().hex}"


@pytest.fixture
def users(namespace: Namespace) -> Iterator[dict[str, str]]:
    """Service -> the name of its user, made on the test Redis with its rules."""
    admin = redis_sync.Redis.from_url(_require("REDIS_URL"))
    token = uuid4().hex[:8]
    names = {service: f"caravan-{service}-{token}" for service in SERVICES}
    for service, rules in acl_rules(namespace.stream_prefix).items():
        admin.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", names[service], "reset", "on", f">{PASSWORD}", *rules
        )
    yield names
    admin.execute_command("ACL", "DELUSER", *names.values())  # type: ignore[no-untyped-call]
    admin.close()


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[tuple[Workload, Path, Path]]:
    """Loopback feeds and a bank (the chaos run's, at their first epoch), and the
    configuration files naming them."""
    server = LoopbackServer()
    workload = Workload(server, lambda _: None)
    workload.show(0)
    server.start()
    yield workload, *workload.write_config(tmp_path)
    server.stop()


def test_each_service_does_all_its_work_under_its_own_user_and_no_more(
    users: dict[str, str],
    sources: tuple[Workload, Path, Path],
    namespace: Namespace,
    redis: Redis,
    es: AsyncElasticsearch,
    tmp_path: Path,
) -> None:
    # `redis` and `es` clean the namespace up afterwards; `admin` is the test's own.
    workload, feeds, rates = sources
    admin = redis_sync.Redis.from_url(_require("REDIS_URL"))
    ports = {service: free_port() for service in SERVICES}
    own = {
        "ingest": {"CARAVAN_INGEST_SOURCES": str(feeds), "CARAVAN_INGEST_HOST_DELAY": "0"},
        "ratefeed": {"CARAVAN_RATEFEED_PROVIDERS": str(rates), "CARAVAN_RATEFEED_HOST_DELAY": "0"},
        "indexer": {"CARAVAN_INDEXER_BLOCK_MS": "100", "CARAVAN_INDEXER_STATS_INTERVAL": "0.5"},
        "query": {"CARAVAN_QUERY_PORT": str(ports["query"]), "CARAVAN_QUERY_RATE_LIMIT": "0"},
    }
    logs = {service: tmp_path / f"{service}.log" for service in SERVICES}
    processes = {
        service: subprocess.Popen(
            [sys.executable, "-m", "services", service],
            env={
                **os.environ,
                "REDIS_USERNAME": users[service],
                "REDIS_PASSWORD": PASSWORD,
                "CARAVAN_HEALTH_PORT": str(ports[service]),
                "CARAVAN_FETCH_ALLOW": "127.0.0.1",
                "CARAVAN_LOG_FORMAT": "json",
                **own[service],
            },
            cwd=REPO,
            stdout=logs[service].open("wb"),
            stderr=subprocess.STDOUT,
        )
        for service in SERVICES
    }
    api = f"http://127.0.0.1:{ports['query']}"
    try:
        poison = redis_text(admin.xadd(namespace.streams.articles, {DATA_FIELD: b'{"poison": '}))
        # The API answers 10 significant digits; the index keeps the exact quotient.
        digits = Context(prec=10, rounding=ROUND_HALF_EVEN)
        bank = {(base, day, digits.plus(rate)) for (base, day), rate in quotes(0).items()}

        def searchable() -> bool:
            answer = _get(f"{api}/api/search?size=1")
            return answer is not None and answer.json()["total"] == FEEDS * WINDOW

        def quoted() -> bool:
            answer = _get(f"{api}/api/quotes/latest")
            return (
                answer is not None
                and {(q["base"], q["as_of"], Decimal(q["rate"])) for q in answer.json()["quotes"]}
                == bank
            )

        def letters() -> list[tuple[str, str]]:
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                admin.xrange(namespace.streams.deadletters),
            )
            return [
                (letter.entry_id, letter.error_class)
                for letter in (DeadLetter.model_validate_json(f[DATA_FIELD]) for _, f in entries)
            ]

        wait_for(searchable, 90, "every feed item searchable")
        wait_for(quoted, 90, "the bank's quotes served")
        wait_for(lambda: bool(letters()), 60, "the poison dead-lettered")
        # Saved before the next epoch's items: the indexer announces each of them, as
        # its user, on the matches stream.
        saved = httpx.post(f"{api}/api/saved-searches", json={"q": "chaos"})
        assert saved.status_code == 201, saved.text
        # The live ticker reads the quotes stream as the query service's user: the
        # bank's next day, published while a page is open, reaches it.
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=60)) as client,
            client.stream("GET", f"{api}/api/quotes/stream") as stream,
        ):
            workload.show(1)
            first = next(line for line in stream.iter_lines() if line.startswith("data:"))
        assert json.loads(first.removeprefix("data:"))["as_of"] == next(iter(quotes(1)))[1]
        assert letters() == [(poison, "ValidationError")]
        # Its new items at least (the others' texts changed too: announced again).
        wait_for(
            lambda: admin.xlen(namespace.streams.matches) >= FEEDS * STEP,
            60,
            "the next epoch's items announced as matches",
        )
        # A tenge a hundred times dearer the day after: held, its dead letter written
        # as the rate feed's user, in the same write as the hold.
        nominal, kzt = prices(2)["KZT"]
        workload.server.routes["/bank.xml"] = static(
            bank_document(2).replace(
                f"<Nominal>{nominal}</Nominal><Value>{kzt}".replace(".", ",").encode(),
                f"<Nominal>{nominal}</Nominal><Value>{kzt * 100}".replace(".", ",").encode(),
            ),
            "application/xml",
        )
        wait_for(lambda: len(letters()) == 2, 60, "the jump held with its dead letter")
        assert letters()[1][1] == "RateJump"
        for service in SERVICES:
            ready = httpx.get(f"http://127.0.0.1:{ports[service]}/readyz")
            assert ready.status_code == 200, (service, ready.text)
        ticker = httpx.get(f"{api}/readyz").json()["details"]["redis_live_ticker"]
        assert ticker is True  # its own read of the quotes, as its user

        # The operator's commands, each as the user of the data it changes.
        def run(service: str, *args: str) -> str:
            env = {**os.environ, "REDIS_USERNAME": users[service], "REDIS_PASSWORD": PASSWORD}
            done = caravan(env, *args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            return done.stdout

        held = letters()[1][0]
        assert "KZT" in run("ratefeed", "ratefeed", "release", held)
        assert poison in run("indexer", "deadletters", "list")
        assert "indexer" in run("indexer", "groups", "list")
        run("indexer", "reindex", "quotes", "--from-streams")
        feed = REALDATA / "feed-andijonfk-uz.xml"
        assert "2 articles published" in run("ingest", "ingest", "--source", str(feed))
    finally:
        stop_processes(list(processes.values()))
        admin.close()
    for service in SERVICES:
        text = logs[service].read_text(encoding="utf-8", errors="replace")
        assert not re.search("NOPERM|no permissions", text), (service, text[-3000:])


def _as(users: dict[str, str], service: str) -> Redis:
    """A client of the test Redis as the service's user, as the service makes its own."""
    settings = RedisSettings(
        url=_require("REDIS_URL"), username=users[service], password=SecretStr(PASSWORD)
    )
    return make_redis(settings)


def _get(url: str) -> httpx.Response | None:
    """The answer, if a 200: None while the service starts or is not ready."""
    try:
        answer = httpx.get(url)
    except httpx.HTTPError:
        return None
    return answer if answer.status_code == 200 else None


def test_a_service_cannot_reach_past_its_own_keys_and_commands(
    users: dict[str, str], namespace: Namespace
) -> None:
    url = _require("REDIS_URL")
    p = namespace.stream_prefix

    def as_user(service: str) -> redis_sync.Redis:
        return redis_sync.Redis.from_url(url, username=users[service], password=PASSWORD)

    refused: dict[str, list[tuple[str, ...]]] = {
        # The public-facing service reads the quotes, and that is all.
        "query": [
            ("XADD", f"{p}articles", "*", "data", "{}"),
            ("XADD", f"{p}quotes", "*", "data", "{}"),
            ("XRANGE", f"{p}articles", "-", "+"),
            ("GET", f"{p}ingest:seen:x"),
            ("EVAL", "return 1", "0"),
        ],
        "ingest": [
            ("XADD", f"{p}quotes", "*", "data", "{}"),
            ("HGETALL", f"{p}ratefeed:last:cbr:KZT"),
            ("SET", f"{p}lease:holder:ratefeed:providers", "me:1"),
            ("XRANGE", f"{p}deadletters", "-", "+"),
        ],
        "ratefeed": [
            ("XADD", f"{p}articles", "*", "data", "{}"),
            ("HGETALL", f"{p}ingest:http:x"),
            ("SET", f"{p}lease:holder:ingest:feed-0", "me:1"),
        ],
        "indexer": [
            ("SET", f"{p}ingest:seen:x", "1"),
            ("SET", f"{p}lease:holder:ratefeed:providers", "me:1"),
        ],
    }
    # Past every user's keys: what lists, counts or (CLIENT TRACKING) names the others'.
    anywhere: list[tuple[str, ...]] = [
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("RANDOMKEY",),
        ("DBSIZE",),
        ("CLIENT", "TRACKING", "ON", "BCAST"),
        ("CLIENT", "LIST"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "DELETE", "anyone's"),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
    ]
    for service in SERVICES:
        client = as_user(service)
        try:
            assert client.ping()
            for command in [*refused[service], *anywhere]:
                with pytest.raises(redis_sync.exceptions.NoPermissionError):
                    client.execute_command(*command)  # type: ignore[no-untyped-call]
        finally:
            client.close()


@pytest.mark.parametrize("service", ["ingest", "ratefeed"])
async def test_a_lease_over_a_fence_counter_of_another_type_is_taken_as_its_user(
    users: dict[str, str], namespace: Namespace, redis: Redis, service: str
) -> None:
    # The rare path of the lease's script (TIME restarts the counter), under the rules.
    await redis.hset(f"{namespace.stream_prefix}lease:fence:{service}:item", "n", "1")
    client = _as(users, service)
    try:
        share = WorkShare(client, namespace.stream_prefix, service, ["item"], "only", ttl=30)
        async with asyncio.timeout(10):
            lease = await share.turn("item")
        assert await lease.held()
        await lease.write([("SET", f"{namespace.stream_prefix}{service}:probe", "1")])
        await share.release_all()
    finally:
        await client.aclose()


def test_the_printed_users_typed_into_redis_cli_are_the_users() -> None:
    # A prefix with quotes and glob characters, as `caravan redis-users` prints it.
    prefix = f"we'ird\"pre*fix{uuid4().hex[:6]}:"
    env = {**os.environ, "CARAVAN_STREAM_PREFIX": prefix}
    lines = caravan(env, "redis-users").stdout.splitlines()
    names = [line.split()[2] for line in lines]
    typed = "".join(f"{line} >{PASSWORD}\n" for line in lines)
    admin = redis_sync.Redis.from_url(_require("REDIS_URL"), decode_responses=True)
    try:
        done = subprocess.run(
            ["redis-cli", "-u", _require("REDIS_URL")],
            input=typed,
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.split() == ["OK"] * len(SERVICES), done.stdout
        for service, name in zip(SERVICES, names, strict=True):
            made = cast("dict[str, list[str]]", admin.acl_getuser(name))
            assert made["keys"] == [rule for rule in acl_rules(prefix)[service] if "~" in rule]
    finally:
        admin.execute_command("ACL", "DELUSER", *names)  # type: ignore[no-untyped-call]
        admin.close()


async def test_a_user_refused_its_streams_is_not_ready_though_ping_passes(
    users: dict[str, str], namespace: Namespace
) -> None:
    # The likeliest slip: users printed for another CARAVAN_STREAM_PREFIX than the
    # services run with. PING passes; a read of the service's own streams does not.
    ours, another = namespace.streams, Streams(CommonSettings(stream_prefix="another:"))
    streams: dict[str, Callable[[Streams], list[str]]] = {
        "ingest": lambda s: [s.articles],
        "ratefeed": lambda s: [s.quotes],
        "indexer": lambda s: list(s.consumed),
        "query": lambda s: [s.quotes],
    }
    for service, of in streams.items():
        client = _as(users, service)
        try:
            assert await client.ping()
            assert await redis_ready(client, *of(ours)), service
            assert not await redis_ready(client, *of(another)), service
        finally:
            await client.aclose()


async def test_a_refused_user_is_told_apart_from_redis_away(
    users: dict[str, str], namespace: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Users made for another prefix, and a password gone stale: Redis answers both, and
    # "redis unreachable" sent the operator to the network instead of to the user.
    said = Said()
    monkeypatch.setattr(leases, "log", said)
    ours = _as(users, "ingest")
    stale = make_redis(
        RedisSettings(
            url=_require("REDIS_URL"), username=users["ingest"], password=SecretStr("stale")
        )
    )
    joining = [
        asyncio.create_task(WorkShare(client, prefix, "ingest", ["item"], "only", 30).join())
        for client, prefix in ((ours, "another:"), (stale, namespace.stream_prefix))
    ]

    async def both_told() -> bool:
        return len(set(said.events("not joined yet"))) == 2

    try:
        await until(both_told, "both refusals told")
        assert sorted(set(said.events("not joined yet"))) == [
            "not joined yet: redis refused this service's credentials",
            "not joined yet: redis refused this service's user (its ACL rules)",
        ]
    finally:
        for task in joining:
            task.cancel()
        await asyncio.gather(*joining, return_exceptions=True)
        await ours.aclose()
        await stale.aclose()
