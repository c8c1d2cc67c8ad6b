"""Search, filters, facets, cursors, articles and suggestions over the bundled samples.

The index is filled by the real pipeline from every sample source in
samples/sources.toml (Uzbek, Russian, German and Portuguese feeds).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.query.app import READINESS_SECONDS
from services.query.cursors import Cursor
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings, Settings
from tests.conftest import Namespace
from tests.pipeline import fill_from_samples, query_client

pytestmark = pytest.mark.integration
PLISETSKAYA = (
    "Сто лет назад родилась Майя Плисецкая — великая балерина и мировая звезда, "
    "которая «на сцене всегда чувствовала себя лучше, чем в жизни»"
)


@pytest.fixture
async def filled(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    await fill_from_samples(redis, es, settings)


@pytest.fixture
async def api(filled: None, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    unlimited = settings.query.model_copy(update={"rate_limit": 0})
    async with query_client(replace(settings, query=unlimited)) as client:
        yield client


async def _search(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_russian_words_are_found_and_highlighted(api: httpx.AsyncClient) -> None:
    found = await _search(api, q="Плисецкая")
    assert [r["title"] for r in found["results"]] == [PLISETSKAYA]
    assert found["results"][0]["source"] == "meduza.io"
    phrase = await _search(api, q='"великая балерина"')
    assert PLISETSKAYA in {r["title"] for r in phrase["results"]}
    assert (await _search(api, q='"балерина великая"'))["total"] == 0
    assert (await _search(api, q="балерина великая"))["total"] == phrase["total"]
    assert (await _search(api, q="Плисецкая -балерина"))["total"] == 0


async def test_filters_by_source_country_language_and_dates(api: httpx.AsyncClient) -> None:
    everything = await _search(api, size=50)
    by_source = await _search(api, source="meduza.io", size=50)
    by_country = await _search(api, country="BR", size=50)
    by_language = await _search(api, language="ru", size=50)
    both = await _search(api, source=["meduza.io", "heise.de"], size=50)

    assert by_source["total"] > 0
    assert {r["source"] for r in by_source["results"]} == {"meduza.io"}
    assert {r["source"] for r in by_country["results"]} == {"noticias.uol.com.br"}
    assert all("BR" in r["countries"] for r in by_country["results"])
    assert {r["language"] for r in by_language["results"]} == {"ru"}
    assert both["total"] == by_source["total"] + (await _search(api, source="heise.de"))["total"]
    assert everything["total"] > both["total"]

    dated = [r["published_at"] for r in everything["results"] if r["published_at"]]
    newest = max(dated)[:10]
    on_that_day = await _search(api, date_from=newest, date_to=newest, size=50)
    assert on_that_day["total"] == sum(1 for d in dated if d[:10] == newest)


async def test_newest_sort_orders_by_publication(api: httpx.AsyncClient) -> None:
    page = await _search(api, q="Java OR Microsoft OR Scrum", sort="newest", size=50)
    dates = [r["published_at"] for r in page["results"]]
    assert len(dates) > 3
    assert dates == sorted(dates, reverse=True)
    relevance = await _search(api, q="Java OR Microsoft OR Scrum", size=50)
    assert sorted(r["id"] for r in relevance["results"]) == sorted(r["id"] for r in page["results"])


async def test_facets_count_what_their_filter_finds(api: httpx.AsyncClient) -> None:
    page = await _search(api)
    facets = page["facets"]
    assert sum(f["count"] for f in facets["source"]) == page["total"]
    assert {f["value"] for f in facets["country"]} >= {"UZ", "RU", "BR"}
    assert facets["month"]
    for name, param in (("source", "source"), ("country", "country")):
        facet = facets[name][0]
        assert (await _search(api, **{param: facet["value"]}))["total"] == facet["count"]
    month = facets["month"][0]
    year, number = month["value"].split("-")
    last_day = (
        await _search(api, date_from=f"{month['value']}-01", date_to=f"{year}-{number}-28")
    )["total"]
    assert last_day <= month["count"]


async def test_cursors_walk_the_same_results_as_pages(api: httpx.AsyncClient) -> None:
    by_pages: list[str] = []
    page = 1
    while True:
        body = await _search(api, size=7, page=page)
        by_pages += [r["id"] for r in body["results"]]
        if body["to"] >= body["total"]:
            break
        page += 1
    by_cursor: list[str] = []
    params: dict[str, Any] = {"size": 7}
    offsets = []
    while True:
        body = await _search(api, **params)
        by_cursor += [r["id"] for r in body["results"]]
        offsets.append(body["from"])
        if not body["next_cursor"]:
            break
        params = {"size": 7, "cursor": body["next_cursor"]}
    assert by_cursor == by_pages
    assert len(set(by_cursor)) == body["total"]
    assert offsets == list(range(1, body["total"] + 1, 7))


async def test_a_cursor_keeps_the_relevance_order_too(api: httpx.AsyncClient) -> None:
    first = await _search(api, q="a OR o OR и", size=5)
    second = await _search(api, q="a OR o OR и", size=5, cursor=first["next_cursor"])
    paged = await _search(api, q="a OR o OR и", size=5, page=2)
    assert [r["id"] for r in second["results"]] == [r["id"] for r in paged["results"]]
    assert (second["from"], second["to"], second["page"]) == (6, 10, 2)


async def test_bad_parameters_are_clear_json_errors(api: httpx.AsyncClient) -> None:
    cursor = (await _search(api, size=5))["next_cursor"]
    cases: dict[str, tuple[dict[str, Any], int, str]] = {
        "page past the window": ({"page": 5000, "size": 10}, 400, "next_cursor"),
        "size above the maximum": ({"size": 51}, 422, "size"),
        "not a date": ({"date_from": "2025-13-01"}, 422, "date_from"),
        "dates reversed": ({"date_from": "2025-03-02", "date_to": "2025-03-01"}, 400, "after"),
        "forged cursor": ({"cursor": "bm90IGEgY3Vyc29y"}, 400, "cursor"),
        "cursor of another sort": ({"q": "x", "cursor": cursor}, 400, "sort=newest"),
        "unknown sort": ({"sort": "random"}, 422, "sort"),
    }
    for name, (params, status, word) in cases.items():
        response = await api.get("/api/search", params=params)
        assert response.status_code == status, name
        assert response.headers["content-type"] == "application/json", name
        assert word in response.text, name


async def test_article_similar_and_missing(api: httpx.AsyncClient) -> None:
    hit = (await _search(api, q="Плисецкая"))["results"][0]
    article = (await api.get(f"/api/articles/{hit['id']}")).json()
    assert article["title"] == PLISETSKAYA
    assert article["source"] == "meduza.io"
    assert article["body"]
    assert "title_suggest" not in article

    java = (await _search(api, q="Java", source="heise.de"))["results"][0]
    similar = await api.get(f"/api/articles/{java['id']}/similar", params={"size": 3})
    assert similar.status_code == 200
    results = similar.json()["results"]
    assert 0 < len(results) <= 3
    assert java["id"] not in {r["id"] for r in results}

    missing = await api.get(f"/api/articles/{'0' * 32}")
    assert (missing.status_code, missing.json()) == (404, {"detail": "0" * 32})
    assert (await api.get(f"/api/articles/{'0' * 32}/similar")).status_code == 404
    assert (await api.get("/api/articles/not-an-id")).status_code == 422


async def test_a_document_another_writer_left_is_one_hit_fewer_not_the_page_lost(
    api: httpx.AsyncClient, es: AsyncElasticsearch, settings: Settings
) -> None:
    # Written by an older version or another tool, not as the index contract has them:
    # one such document made every search that found it a 503 (the feed a 500, the
    # page a 500 on a date Elasticsearch takes and Python does not).
    articles = IndexNames(settings.common.index_prefix).articles
    fields = {"url": "https://x.example/a", "source": "x.example", "body": "Плисецкая"}
    when = {"fetched_at": "2026-01-01T00:00:00Z"}
    odd: dict[str, dict[str, Any]] = {
        "a" * 32: {**fields, **when, "title": 12345},  # not text
        "b" * 32: {**fields, **when, "title": "Плисецкая", "published_at": "2025"},
        "c" * 32: {**fields, "title": "Плисецкая", "tags": [None]},  # and no fetched_at
        # Indexed before the event contract refused other schemes: no link to give.
        "d" * 32: {**fields, **when, "title": "Плисецкая", "url": "javascript:alert(1)"},
    }
    for doc_id, document in odd.items():
        await es.index(index=articles, id=doc_id, document=document)
    # Half a UTF-16 pair, as JSON can spell it: Elasticsearch keeps it and gives it back,
    # and the whole answer was refused, so every page that found it was a 503.
    half = {**fields, **when, "url": "https://x.example/e", "title": "Плисецкая HALF"}
    lone = json.dumps(half).replace("HALF", "\\ud800")
    async with httpx.AsyncClient(base_url=settings.elasticsearch.url) as raw:
        stored = await raw.put(
            f"/{articles}/_doc/{'e' * 32}",
            content=lone.encode(),
            headers={"content-type": "application/json"},
        )
        assert stored.status_code == 201, stored.text
    await es.indices.refresh(index=articles)

    found = await _search(api, q="Плисецкая", size=50)
    titles = {r["title"] for r in found["results"]}
    assert PLISETSKAYA in titles
    assert "Плисецкая" in titles  # the one with the date of another form
    assert {r["id"] for r in found["results"]} & {*odd, "e" * 32} == {"b" * 32, "e" * 32}
    assert "Плисецкая \ufffd" in titles
    assert found["total"] == len(found["results"]) + 3  # counted, as Elasticsearch found them
    page = await api.get("/", params={"q": "Плисецкая"})
    assert page.status_code == 200
    assert "2025" in page.text  # the date as stored
    feed = await api.get("/api/search.atom", params={"q": "Плисецкая", "sort": "newest"})
    assert feed.status_code == 200
    assert PLISETSKAYA in feed.text
    assert "x.example/a" not in feed.text
    assert "javascript:" not in feed.text
    assert "javascript:" not in page.text
    hit = found["results"][0]
    assert (await api.get(f"/api/articles/{hit['id']}/similar")).status_code == 200
    # Asked for by its id, it is not served either: a 404, not "search is unavailable".
    for doc_id in ("a" * 32, "d" * 32):
        unreadable = await api.get(f"/api/articles/{doc_id}")
        assert (unreadable.status_code, unreadable.json()) == (404, {"detail": doc_id})
        assert (await api.get(f"/api/articles/{doc_id}/similar")).status_code == 404
        assert (await api.get(f"/articles/{doc_id}")).status_code == 404
    assert (await api.get(f"/api/articles/{'b' * 32}")).json()["published_at"] == "2025"


async def test_suggestions_complete_title_prefixes(api: httpx.AsyncClient) -> None:
    russian = (await api.get("/api/suggest", params={"q": "Сто лет"})).json()
    assert [s["title"] for s in russian["suggestions"]] == [PLISETSKAYA]
    java = (await api.get("/api/suggest", params={"q": "java", "size": 10})).json()
    assert java["suggestions"]
    assert all(s["title"].lower().startswith("java") for s in java["suggestions"])
    empty = (await api.get("/api/suggest", params={"q": " "})).json()
    assert empty["suggestions"] == []


async def test_readiness_reports_the_cluster_and_answers_are_cacheable(
    api: httpx.AsyncClient,
) -> None:
    ready = (await api.get("/readyz")).json()
    assert ready["checks"] == {"elasticsearch": True}
    response = await api.get("/api/search", params={"q": "Java"})
    assert response.headers["cache-control"] == "public, max-age=5"
    assert "cache-control" not in (await api.get("/readyz")).headers


async def test_a_flood_of_probes_asks_the_cluster_once_a_second(
    api: httpx.AsyncClient, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # Probes are not rate-limited: 1,500 a second cost the cluster 0.7 s of CPU a second.
    async def queries() -> int:
        stats = await es.indices.stats(index=namespace.articles, metric="search")
        return int(stats["_all"]["total"]["search"]["query_total"])

    before, started = await queries(), time.monotonic()
    probes = await asyncio.gather(*(api.get("/readyz") for _ in range(50)))  # all at once
    answers = [probe.status_code for probe in probes]
    readings = math.ceil((time.monotonic() - started) / READINESS_SECONDS) + 1
    assert answers == [200] * 50
    assert await queries() - before <= readings  # a count each, not one a probe


async def test_total_beyond_the_bound_is_a_lower_bound(filled: None, settings: Settings) -> None:
    bounded = settings.query.model_copy(update={"exact_total_up_to": 5})
    async with query_client(replace(settings, query=bounded)) as api:
        body = await _search(api, size=3)
        assert (body["total"], body["total_relation"]) == (5, "gte")
        assert body["next_cursor"]


async def test_each_client_is_rate_limited(filled: None, settings: Settings) -> None:
    limited = settings.query.model_copy(update={"rate_limit": 0.01, "rate_burst": 3})
    async with query_client(replace(settings, query=limited)) as api:
        statuses = [(await api.get("/api/search")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await api.get("/api/suggest", params={"q": "a"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert (await api.get("/readyz")).status_code == 200  # probes are never limited


async def test_the_search_page_shows_ticker_results_facets_and_pages(
    api: httpx.AsyncClient,
) -> None:
    total = (await _search(api))["total"]
    page = await api.get("/")
    html = page.text
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "KGS/USD = 0.01127" in html
    assert '<label for="q">Search articles</label>' in html
    assert f"Viewing results 1 - 10 of {total}" in html
    assert "<mark>Java</mark>" in (await api.get("/", params={"q": "Java"})).text
    assert 'aria-label="Filter results"' in html
    assert 'aria-current="page"' in html
    article = await api.get(f"/articles/{(await _search(api, q='Плисецкая'))['results'][0]['id']}")
    assert PLISETSKAYA in article.text
    assert (await api.get(f"/articles/{'0' * 32}")).status_code == 404
    not_a_number = await api.get("/", params={"page": "two"})
    assert not_a_number.status_code == 422
    assert not_a_number.headers["content-type"].startswith("text/html")
    assert "page: Input should be a valid integer" in not_a_number.text
    assert (await api.get("/api/search", params={"page": "two"})).json()["detail"][0]["loc"] == [
        "query",
        "page",
    ]
    too_deep = await api.get("/", params={"page": 5000})
    assert too_deep.status_code == 400
    assert too_deep.headers["content-type"].startswith("text/html")
    assert "next_cursor" in too_deep.text
    # A string where a date goes: refused here as forged, on the page, not sent on for
    # Elasticsearch to refuse (which answered the page with the API's JSON).
    forged = Cursor(5, "newest", ("abc", 1, "x")).encode()
    refused = await api.get("/", params={"cursor": forged})
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")


async def test_without_elasticsearch_answers_are_503_and_readiness_says_why(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    away = ElasticsearchSettings(url=f"http://127.0.0.1:{port}", request_timeout=2)
    async with query_client(replace(settings, elasticsearch=away)) as api:
        search = await api.get("/api/search", params={"q": "x"})
        assert (search.status_code, search.json()) == (503, {"detail": "search is unavailable"})
        assert search.headers["retry-after"] == "5"
        page = await api.get("/", params={"q": "x"})
        assert page.status_code == 503
        assert "Search is unavailable" in page.text
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"elasticsearch": False}
