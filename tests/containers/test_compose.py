"""docker-compose.yml for real, under podman-compose, as a platform team's first day goes.

The file as users get it (its official image names are local stand-ins here), security
on as it says, the samples loaded by `--profile samples`, and checked only through the
published port and the containers themselves: search, the ticker and readiness; the
indexer stopped and started while articles arrive (nothing lost, nothing doubled);
`down` and `up` (the named volumes keep the data). The commands are the README's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events import ArticleEvent, content_hash
from shared.streams import DATA_FIELD
from tests.conftest import REPO
from tests.containers.podman import environment, inspect, podman
from tests.waiting import wait_for

pytestmark = pytest.mark.containers

PROJECT = "caravan-test"
API = "http://127.0.0.1:8080"
COMPOSE = [str(Path(sys.executable).with_name("podman-compose"))]
# The README's commands (tests/containers checks that it shows them).
UP = ["--profile", "samples", "up", "-d"]
DOWN = ["--profile", "samples", "down"]
ARTIFACTS = REPO / "test-artifacts"
WORD = "Containerflow"


def compose(env_file: Path, *args: str) -> None:
    # As on a platform team's machine: only .env configures the stack, not the test
    # servers' variables this process has (compose interpolates the environment too).
    env = {
        name: value
        for name, value in environment().items()
        if not name.startswith(("REDIS_", "ELASTIC", "CARAVAN_"))
    }
    done = subprocess.run(
        [*COMPOSE, "--env-file", str(env_file), "-p", PROJECT, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"podman-compose {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout.decode(errors='replace')[-3000:]}"
            f"{done.stderr.decode(errors='replace')[-3000:]}"
        )


def _get(path: str) -> Any:
    response = httpx.get(f"{API}{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def _answers(path: str, check: Any) -> bool:
    try:
        return bool(check(_get(path)))
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def _total(q: str) -> int:
    return int(_get(f"/api/search?q={q}&size=1")["total"])


def _publish(count: int, start: int) -> None:
    """Articles straight into the stream, as ingest would publish them (RESP, one pipe)."""
    now = datetime.now(UTC)
    commands = []
    for number in range(start, start + count):
        title = f"{WORD} {number}"
        body = f"Article {number} sent while the indexer came and went."
        event = ArticleEvent(
            source="containers",
            url=f"https://site.example/{number}",
            canonical_url=f"https://site.example/{number}",
            title=title,
            body=body,
            fetched_at=now,
            content_hash=content_hash(title, body),
        )
        parts = [b"XADD", b"caravan:articles", b"*", DATA_FIELD, event.model_dump_json().encode()]
        commands.append(
            b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        )
    podman("exec", "-i", f"{PROJECT}_redis_1", "redis-cli", "--pipe", stdin=b"".join(commands))


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """.env.example with the two passwords set, as the README says."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    path.write_text(text.replace("change-me", "containers-test-secret"), encoding="utf-8")
    yield path
    compose(path, *DOWN, "-v")


@pytest.fixture(scope="module")
def stack(env_file: Path) -> float:
    """The stack up on the samples; seconds from `up` to the first search hit."""
    compose(env_file, *DOWN, "-v")  # whatever an earlier run left
    started = time.monotonic()
    compose(env_file, *UP)
    wait_for(
        lambda: _answers("/api/search?q=", lambda page: page["total"] > 0),
        300,
        "the first search hit",
    )
    return time.monotonic() - started


def test_samples_are_searchable_the_ticker_answers_and_it_is_ready(stack: float) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "compose.json").write_text(json.dumps({"up_to_first_hit_s": round(stack, 1)}))
    wait_for(
        lambda: _answers("/api/search?q=", lambda page: page["total"] >= 56),
        300,
        "every sample article indexed",
    )
    wait_for(
        lambda: _answers("/api/quotes/latest", lambda quotes: len(quotes["ticker"]) == 5),
        300,
        "the five ticker lines",
    )
    assert any(line.startswith("KGS/USD = ") for line in _get("/api/quotes/latest")["ticker"])
    assert httpx.get(f"{API}/readyz", timeout=10).status_code == 200


def test_services_waited_for_elasticsearch_instead_of_failing(stack: float) -> None:
    # podman 4.3 starts them with Elasticsearch, not after it is healthy (it ignores
    # depends_on's condition): they must wait by themselves, never exit and restart.
    for service in ("indexer", "query", "ingest", "ratefeed"):
        state = inspect("container", f"{PROJECT}_{service}_1")
        assert state["State"]["Running"], service
        assert state["RestartCount"] == 0, service


def test_stopping_the_indexer_while_articles_arrive_loses_nothing(stack: float) -> None:
    _publish(100, 0)
    podman("stop", "-t", "30", f"{PROJECT}_indexer_1")
    _publish(100, 100)
    podman("start", f"{PROJECT}_indexer_1")
    restarted = time.monotonic()
    wait_for(
        lambda: _answers(f"/api/search?q={WORD}&size=1", lambda page: page["total"] >= 200),
        300,
        "all 200 indexed",
    )
    recovered = time.monotonic() - restarted
    assert _total(WORD) == 200  # nothing lost, nothing twice
    dead = podman("exec", f"{PROJECT}_redis_1", "redis-cli", "XLEN", "caravan:deadletters")
    assert int(dead.stdout) == 0
    row = {
        "kill": "indexer container stopped and started",
        "sent": 200,
        "indexed": 200,
        "dead_lettered": 0,
        "duplicated": 0,
        "recovered_s": round(recovered, 1),
    }
    with (ARTIFACTS / "container-faults.jsonl").open("a", encoding="utf-8") as report:
        report.write(json.dumps(row) + "\n")


def test_down_then_up_keeps_the_data(stack: float, env_file: Path) -> None:
    before = _total("")
    compose(env_file, *DOWN)
    compose(env_file, *UP)
    wait_for(lambda: _answers("/readyz", lambda _: True), 300, "ready again")
    wait_for(
        lambda: _answers("/api/search?q=", lambda page: page["total"] >= before),
        300,
        "the index back",
    )
    assert _total("") == before
    assert _total(WORD) == 200


def test_the_readme_shows_the_commands_run_here() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"podman-compose {' '.join(UP)}" in readme
    assert f"docker compose {' '.join(UP)}" in readme
    assert "podman build --format docker -t caravan:latest ." in readme
    assert os.path.exists(REPO / ".env.example")
