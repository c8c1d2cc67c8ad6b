"""The example consumers in Go and Node.js do what docs/events.md tells an outside team to.

Real events come from `caravan ingest --source` and `caravan ratefeed --source` (run
once per module, then copied byte for byte onto each test's own streams), next to
poison entries. Each consumer is a process built from examples/ (outputs cached in
.cache/examples, rebuilt only when a source is newer) that prints JSON lines; the
tests check those lines and what the consumer left in Redis.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
import redis as sync_redis
from jsonschema import Draft202012Validator
from redis.asyncio import Redis

from tests.conftest import REALDATA, REPO, Namespace

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"
CACHE = REPO / ".cache" / "examples"
CARAVAN = Path(sys.executable).parent / "caravan"
FIXTURES = REPO / "docs" / "examples" / "events" / "invalid"
Fields = dict[bytes, bytes]


def _newest(paths: Iterable[Path]) -> float:
    return max(path.stat().st_mtime for path in paths)


def _stale(output: Path, sources: Iterable[Path]) -> bool:
    return not output.exists() or output.stat().st_mtime < _newest(sources)


def _build_go() -> list[str]:
    source = EXAMPLES / "go"
    binary = CACHE / "go" / "consumer"
    if _stale(binary, [*source.glob("*.go"), source / "go.mod", source / "go.sum"]):
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "build", "-buildvcs=false", "-o", str(binary), "."], cwd=source, check=True
        )
    return [str(binary)]


def _build_node() -> list[str]:
    source = EXAMPLES / "node"
    lock = source / "package-lock.json"
    # npm ci writes this copy of the lock file into node_modules when it is done.
    if _stale(source / "node_modules" / ".package-lock.json", [lock]):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=source, check=True)
    script = CACHE / "node" / "consumer.js"
    if _stale(script, [*(source / "src").glob("*.ts"), source / "tsconfig.json", lock]):
        subprocess.run(
            ["node", "node_modules/typescript/bin/tsc", "-p", ".", "--outDir", str(script.parent)],
            cwd=source,
            check=True,
        )
    return ["node", str(script)]


BUILDERS: dict[str, Callable[[], list[str]]] = {"go": _build_go, "node": _build_node}


@pytest.fixture(scope="module")
def commands() -> dict[str, list[str]]:
    return {language: build() for language, build in BUILDERS.items()}


@dataclass(frozen=True)
class Published:
    articles: list[Fields]
    quotes: list[Fields]


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test` (deploy/local/test.sh)")
    return url


@pytest.fixture(scope="module")
def published() -> Iterator[Published]:
    """The entries the real producers write for a sample feed and a sample rates file."""
    prefix = f"test-{uuid4().hex[:10]}:"
    env = {**os.environ, "CARAVAN_STREAM_PREFIX": prefix, "CARAVAN_LOG_FORMAT": "console"}
    for command in (
        ["ingest", "--source", str(REALDATA / "feed-heise-developer.atom")],
        ["ratefeed", "--source", str(REALDATA / "cbr-xml-daily-2023-09-27.xml")],
    ):
        subprocess.run([str(CARAVAN), *command], env=env, cwd=REPO, check=True, capture_output=True)
    client = sync_redis.Redis.from_url(_redis_url())
    try:
        yield Published(
            *(
                [fields for _, fields in cast("list[tuple[bytes, Fields]]", client.xrange(stream))]
                for stream in (f"{prefix}articles", f"{prefix}quotes")
            )
        )
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@dataclass(frozen=True)
class Streams:
    namespace: Namespace
    # Entries are named `{stream}/{entry ID}`: IDs are unique within a stream only.
    events: set[str]  # the real events
    poison: dict[str, str]  # entry -> the error class a consumer must report
    payloads: dict[str, bytes]  # entry -> its __data__, for the poison entries


async def _add(redis: Redis, stream: str, fields: Fields) -> str:
    entry_id = cast("bytes", await redis.xadd(stream, fields))  # type: ignore[arg-type]
    return f"{stream}/{entry_id.decode()}"


@pytest.fixture
async def streams(redis: Redis, namespace: Namespace, published: Published) -> Streams:
    articles, quotes = namespace.streams.articles, namespace.streams.quotes
    events = {await _add(redis, articles, fields) for fields in published.articles}
    events |= {await _add(redis, quotes, fields) for fields in published.quotes}
    rate_as_number = (FIXTURES / "QuoteEvent-rate-as-number.json").read_bytes()
    version_two = (FIXTURES / "QuoteEvent-unknown-schema_version.json").read_bytes()
    poison_entries: list[tuple[str, Fields, str]] = [
        (articles, {b"body": b"no __data__ field"}, "NotAnEvent"),
        (quotes, {b"__data__": b"\xff{not json"}, "NotJson"),
        (quotes, {b"__data__": rate_as_number}, "SchemaViolation"),
        (quotes, {b"__data__": version_two}, "UnknownSchemaVersion"),
    ]
    poison, payloads = {}, {}
    for stream, fields, error_class in poison_entries:
        entry = await _add(redis, stream, fields)
        poison[entry] = error_class
        payloads[entry] = fields.get(b"__data__", b"")
    return Streams(namespace, events, poison, payloads)


@dataclass(frozen=True)
class Run:
    returncode: int
    lines: list[dict[str, Any]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == kind]

    @property
    def summary(self) -> dict[str, Any]:
        (summary,) = self.of("summary")
        return summary


def _run(
    command: list[str], streams: Streams, name: str, *args: str, claim_idle_ms: int = 60_000
) -> Run:
    prefix = streams.namespace.stream_prefix
    env = {
        **os.environ,
        "REDIS_URL": _redis_url(),
        "CARAVAN_STREAM_PREFIX": prefix,
        "CONSUMER_GROUP": "downstream",
        "CONSUMER_NAME": name,
        "DEADLETTER_STREAM": f"{prefix}downstream:deadletters",
        "SCHEMAS_DIR": str(REPO / "docs" / "schemas"),
        "BLOCK_MS": "100",
        "CLAIM_IDLE_MS": str(claim_idle_ms),
        "NODE_PATH": str(EXAMPLES / "node" / "node_modules"),
    }
    done = subprocess.run(
        [*command, *args], env=env, cwd=REPO, capture_output=True, timeout=120, check=False
    )
    assert done.returncode in (0, 3), done.stderr.decode()
    return Run(done.returncode, [json.loads(line) for line in done.stdout.splitlines()])


def _entry(line: dict[str, Any]) -> str:
    return f"{line['stream']}/{line['id']}"


def _valid(run: Run, via: str | None = None) -> list[str]:
    return sorted(_entry(line) for line in run.of("valid") if via is None or line["via"] == via)


LANGUAGES = sorted(BUILDERS)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_consumer_validates_acknowledges_and_dead_letters_poison_in_its_own_stream(
    language: str, commands: dict[str, list[str]], streams: Streams, redis: Redis
) -> None:
    run = _run(commands[language], streams, "worker-1", "--once")

    assert run.returncode == 0
    assert _valid(run) == sorted(streams.events)
    assert {_entry(line): line["error_class"] for line in run.of("poison")} == streams.poison
    assert run.summary == {
        "event": "summary",
        "consumer": "worker-1",
        "valid": len(streams.events),
        "duplicates": 0,
        "poison": len(streams.poison),
        "pending_reread": 0,
        "claimed": 0,
        "removed_consumers": [],
    }

    names = streams.namespace.streams
    for stream in names.consumed:
        pending: dict[str, Any] = await redis.xpending(stream, "downstream")
        assert pending["pending"] == 0
    assert await redis.xlen(names.deadletters) == 0  # never Caravan's dead-letter stream
    schema = json.loads((REPO / "docs" / "schemas" / "DeadLetter.json").read_text())
    letters = cast(
        "list[tuple[bytes, Fields]]",
        await redis.xrange(f"{streams.namespace.stream_prefix}downstream:deadletters"),
    )
    assert len(letters) == len(streams.poison)
    for _, fields in letters:
        letter = json.loads(fields[b"__data__"])
        assert list(Draft202012Validator(schema).iter_errors(letter)) == []
        entry = letter["idempotency_key"]  # {stream}/{entry ID}
        assert base64.b64decode(letter["payload"]) == streams.payloads[entry]
        assert letter["error_class"] == streams.poison[entry]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_restarted_consumer_reads_its_own_pending_entries_first(
    language: str, commands: dict[str, list[str]], streams: Streams
) -> None:
    crash = _run(commands[language], streams, "worker-1", "--crash-after-read", "3")
    assert crash.returncode == 3
    (crashed,) = crash.of("crash")
    held = crashed["entries"]
    assert len(held) == 6  # three from each stream, delivered and never acknowledged
    assert set(held) <= streams.events

    run = _run(commands[language], streams, "worker-1", "--once")

    handled = [line for line in run.lines if line["event"] in ("valid", "poison")]
    assert {_entry(line) for line in handled[: len(held)]} == set(held)
    assert _valid(run, "pending") == sorted(held)
    assert run.summary["pending_reread"] == len(held)
    assert _valid(run) == sorted(streams.events)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_consumer_claims_what_a_dead_one_left_and_removes_it(
    language: str, commands: dict[str, list[str]], streams: Streams, redis: Redis
) -> None:
    crash = _run(commands[language], streams, "worker-1", "--crash-after-read", "3")
    (crashed,) = crash.of("crash")
    held = crashed["entries"]
    assert held

    # Idle 0: worker-1 is known dead here, so its entries need not wait to be presumed so.
    run = _run(commands[language], streams, "worker-2", "--once", claim_idle_ms=0)

    assert _valid(run, "claimed") == sorted(held)
    assert run.summary["claimed"] == len(held)
    assert _valid(run) == sorted(streams.events)
    assert {line["consumer"] for line in run.of("consumer_removed")} == {"worker-1"}
    for stream in streams.namespace.streams.consumed:
        consumers = await redis.xinfo_consumers(stream, "downstream")
        assert [c["name"] for c in consumers] == [b"worker-2"]
