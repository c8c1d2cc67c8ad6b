"""Every answer of the query service stays the same, byte for byte (issue #27).

The corpus of tests/unit/test_indexed_documents.py (the sample feeds' items, the
real article pages and 400 generated articles, fixed times; its bulk lines are held
to digests there) is indexed on the real Elasticsearch, and the requests of
tests/contracts/query_cases.py are answered by the service in process. Each answer's
status, headers and body must be the recorded ones (query_responses.json, recorded
at 4352962, before the search path was made cheaper). The same requests are asked of
three set-ups: the answer cache and the rate limit as deployed (the limit too high
to refuse), both off (as `make bench-query` runs it: no cache-control header), and
twice in a row, so a cached answer is the same bytes as a fresh one; and over HTTP
from the service as a process of its own.

Also held: the OpenAPI document, to its digest at the same commit, and the answers
while Elasticsearch cannot be reached.

Recording, only for a change meant to change answers (the index's analysis, a new
field):
CARAVAN_RECORD_QUERY_RESPONSES=1 deploy/local/test.sh tests/contracts/test_query_responses.py
writes the file (and fails, so that a recording run is never mistaken for a pass).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from services.specs import render
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings, Settings
from tests.contracts.query_cases import (
    ARTICLE_PATHS,
    FOLLOW,
    FOLLOWED,
    OTHER_REQUESTS,
    WRITTEN_SEARCHES,
    mixed_searches,
)
from tests.e2e.conftest import query_process
from tests.pipeline import query_client
from tests.unit.test_indexed_documents import articles

pytestmark = pytest.mark.integration

RECORD = Path(__file__).parent / "query_responses.json"
RECORDING = os.environ.get("CARAVAN_RECORD_QUERY_RESPONSES") == "1"
# sha256 of docs/openapi/query.json (services.specs.render of the app's document) at 4352962,
# then with each filter value bounded to 200 characters, and a cursor to 44,000 (for the
# longest URL the index keeps; 2,000 before): its only changes since.
OPENAPI_SHA256 = "418dfb0f1f389019b48909a509643715eb3b5722da1d98d3c1a1ce589c81f487"
# Bodies up to this long are kept whole in the record (errors, mostly): a difference
# in one of them is shown, not only its digest.
KEPT_WHOLE = 1500
# The search page shows today's date: the one line of an answer that changes by itself.
TODAY = re.compile(rb'<p class="today"><time datetime="[^"]*">[^<]*</time></p>')


def _settings(settings: Settings, **query: Any) -> Settings:
    fixed = {
        "max_page_size": 50,
        "exact_total_up_to": 10_000,
        "public_url": None,
        "trusted_proxies": 0,
        "trusted_proxy_cidrs": "",
        **query,
    }
    return replace(settings, query=settings.query.model_copy(update=fixed))


DEPLOYED = {"cache_seconds": 5.0, "rate_limit": 1_000_000.0, "rate_burst": 1_000_000}
BENCH = {"cache_seconds": 0.0, "rate_limit": 0.0}


@pytest.fixture
async def corpus(es: AsyncElasticsearch, settings: Settings) -> list[str]:
    """The corpus indexed in the test's namespace; the ids of its articles, in order."""
    common = settings.common.model_copy(update={"index_shards": 1})
    names = IndexNames(common.index_prefix)
    await ensure_indices(es, names, common)
    actions = [article_action(event, names.articles) for event in articles()]
    # The corpus rewrites some articles (a newer version of the same page). Written in
    # turn, the copies they replace stay in the index, deleted, until a merge drops
    # them; until then the completion suggester and the similar articles' term counts
    # see them, and when that merge runs is the node's choice (a force merge to one
    # segment does nothing to an index already of one). Only the newest version of
    # each (its last, as versions only grow) is written, where it was: the index every
    # merge ends in, its documents in the same order, from the start.
    last = {action.doc_id: i for i, action in enumerate(actions)}
    newest = [action for i, action in enumerate(actions) if last[action.doc_id] == i]
    operations: list[Any] = [part for action in newest for part in action.operations()]
    # One segment, its documents in the order written: the suggester takes its best
    # per segment, and equal scores go by the order of the documents. A bulk that a
    # busy node's scheduled refresh cut in two became, merged, another order (a force
    # merge puts the larger segment first), and other suggestions and similar articles.
    # Not refreshed until written, it is one segment as written.
    await es.indices.put_settings(index=names.articles, settings={"refresh_interval": "-1"})
    response = await es.options(request_timeout=120).bulk(operations=operations)
    assert not response["errors"]
    await es.indices.refresh(index=names.articles)
    segments = await es.indices.segments(index=names.articles)
    [shard] = [copy for shards in segments["indices"].values() for copy in shards["shards"]["0"]]
    assert shard["num_search_segments"] == 1, "the corpus is not one segment: answers would vary"
    return [action.doc_id for action in actions]


def _answer(target: str, response: httpx.Response) -> dict[str, Any]:
    body = TODAY.sub(b'<p class="today">(today)</p>', response.content)
    answer: dict[str, Any] = {
        "request": target,
        "status": response.status_code,
        # As the app sends them (uvicorn adds these two); their order is no contract.
        "headers": sorted(
            f"{name.decode('latin-1')}: {value.decode('latin-1')}"
            for name, value in response.headers.raw
            if name.lower() not in (b"date", b"server")
        ),
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    if len(body) <= KEPT_WHOLE:
        answer["body"] = body.decode("utf-8", "replace")
    return answer


def _url(api: httpx.AsyncClient, target: str) -> httpx.URL:
    """The target as written (httpx would normalise its percent-encoding), letters
    outside ASCII percent-encoded as a browser sends them."""
    path, _, query = "".join(c if c.isascii() else quote(c) for c in target).partition("?")
    url = api.base_url.copy_with(path=path)
    return url.copy_with(query=query.encode("ascii")) if query else url


async def _ask(api: httpx.AsyncClient, target: str) -> dict[str, Any]:
    return _answer(target, await api.get(_url(api, target)))


def _next_cursor(answer: dict[str, Any], body: bytes) -> str | None:
    if answer["status"] != 200:
        return None
    cursor: str | None = json.loads(body).get("next_cursor")
    return cursor


async def _ask_all(api: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    targets = [*WRITTEN_SEARCHES, *mixed_searches(articles()), *OTHER_REQUESTS]
    # Articles spread over the corpus: feed items, pages and generated ones.
    for doc_id in ids[:: max(1, len(ids) // 6)][:6]:
        targets += [path.format(id=doc_id) for path in ARTICLE_PATHS]
    answers = [await _ask(api, target) for target in targets]
    for start in FOLLOWED:
        target = start
        for step in range(1, 4):
            response = await api.get(_url(api, target))
            cursor = _next_cursor({"status": response.status_code}, response.content)
            if cursor is None:
                break
            target = f"{start}&cursor={cursor}"
            answer = await _ask(api, target)
            answer["request"] = f"{start} {FOLLOW} ×{step}"
            answers.append(answer)
    return answers


def _differences(
    recorded: list[dict[str, Any]], answers: list[dict[str, Any]], drop_header: str | None
) -> list[str]:
    expected = {a["request"]: a for a in recorded}
    assert [a["request"] for a in answers] == [a["request"] for a in recorded], (
        "the requests changed: record again only if that is meant"
    )
    problems = []
    for answer in answers:
        want = dict(expected[answer["request"]])
        if drop_header:
            want["headers"] = [h for h in want["headers"] if not h.startswith(drop_header)]
        if answer != want:
            shown = {k: v for k, v in answer.items() if want.get(k) != v}
            problems.append(f"{answer['request']}: got {shown}, recorded {want}")
    return problems


async def test_every_answer_is_the_recorded_bytes(corpus: list[str], settings: Settings) -> None:
    async with query_client(_settings(settings, **DEPLOYED)) as api:
        answers = await _ask_all(api, corpus)
        again = await _ask_all(api, corpus)  # now partly from the answer cache
    if RECORDING:
        RECORD.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
        pytest.fail(f"recorded {len(answers)} answers to {RECORD}: commit them")
    recorded = json.loads(RECORD.read_text())
    assert len(recorded) > 300
    problems = _differences(recorded, answers, None) + _differences(recorded, again, None)
    async with query_client(_settings(settings, **BENCH)) as api:
        uncached = await _ask_all(api, corpus)
    problems += _differences(recorded, uncached, "cache-control:")
    assert not problems, f"{len(problems)} answers changed:\n" + "\n".join(problems[:5])


async def test_the_service_process_answers_the_recorded_bytes(
    corpus: list[str], settings: Settings
) -> None:
    """The same over HTTP from `caravan query` itself (uvicorn, httptools): what the
    app's messages become on the wire, the framing of the answers included."""
    env = {
        "CARAVAN_QUERY_CACHE_SECONDS": "5",
        "CARAVAN_QUERY_RATE_LIMIT": "1000000",
        "CARAVAN_QUERY_RATE_BURST": "1000000",
        "CARAVAN_QUERY_MAX_PAGE_SIZE": "50",
        "CARAVAN_QUERY_EXACT_TOTAL_UP_TO": "10000",
    }
    with query_process(**env) as url:
        # The Host the in-process answers were recorded with: the feeds' links use it.
        async with httpx.AsyncClient(base_url=url, headers={"host": "query"}) as api:
            answers = await _ask_all(api, corpus)
    problems = _differences(json.loads(RECORD.read_text()), answers, None)
    assert not problems, f"{len(problems)} answers changed:\n" + "\n".join(problems[:5])


def test_the_openapi_document_is_the_recorded_one() -> None:
    from services.query.app import create_app  # noqa: PLC0415

    document = render(create_app(Settings.from_env()).openapi())
    digest = hashlib.sha256(document.encode()).hexdigest()
    assert digest == OPENAPI_SHA256, "the OpenAPI document changed"


@pytest.fixture
async def unreachable(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    away = ElasticsearchSettings(url=f"http://127.0.0.1:{port}", request_timeout=2)
    async with query_client(replace(_settings(settings, **DEPLOYED), elasticsearch=away)) as client:
        yield client


UNAVAILABLE = {
    "/api/search?q=x": (503, b'{"detail":"search is unavailable"}'),
    "/api/search": (503, b'{"detail":"search is unavailable"}'),
    "/api/search?page=0": (422, None),
    "/api/search?page=1001": (400, None),
    "/api/suggest?q=x": (503, b'{"detail":"search is unavailable"}'),
}


async def test_answers_without_elasticsearch(unreachable: httpx.AsyncClient) -> None:
    for target, (status, body) in UNAVAILABLE.items():
        response = await unreachable.get(target)
        assert response.status_code == status, target
        assert response.headers["content-type"] == "application/json", target
        if body is not None:
            assert response.content == body, target
            assert response.headers["retry-after"] == "5", target
            assert "cache-control" not in response.headers, target
