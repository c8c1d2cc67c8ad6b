"""The query API over an index filled by the real pipeline (ingest, ratefeed, indexer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.ingest.app import ingest_once
from services.ratefeed.app import ratefeed_once
from shared.settings import Settings
from tests.conftest import REALDATA, Namespace
from tests.loopback import peer
from tests.pipeline import index_streams, query_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    await ingest_once(settings, str(REALDATA / "feed-uol-noticias.rss"), name="uol")
    await ingest_once(settings, str(REALDATA / "feed-heise-developer.atom"), name="heise")
    await ratefeed_once(settings, str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))
    await index_streams(redis, es, settings)
    async with query_client(settings) as client:
        yield client


async def test_search_pages_carry_the_viewing_numbers(api: httpx.AsyncClient) -> None:
    first = (await api.get("/api/search", params={"size": 6})).json()
    last = (await api.get("/api/search", params={"size": 6, "page": 5})).json()

    assert (first["from"], first["to"], first["total"]) == (1, 6, 30)
    assert len(first["results"]) == 6
    assert (last["from"], last["to"], last["total"]) == (25, 30, 30)
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in last["results"]})


async def test_search_finds_words_and_highlights_them(api: httpx.AsyncClient) -> None:
    by_title = (await api.get("/api/search", params={"q": "WildFly"})).json()
    by_summary = (await api.get("/api/search", params={"q": "JBoss"})).json()

    assert by_title["results"][0]["title"] == "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei"
    assert by_title["results"][0]["url"].startswith("http://www.heise.de/developer/meldung/")
    assert by_summary["results"][0]["id"] == by_title["results"][0]["id"]
    assert "<mark>JBoss</mark>" in by_summary["results"][0]["excerpt"]


@pytest.mark.parametrize(
    "odd",
    [
        '"WildFly',
        "WildFly -",
        "WildFly OR OR",
        "((WildFly",
        "title:* WildFly",
        "WildFly \\",
        "🎪 WildFly",
    ],
)
async def test_any_user_string_is_answered_by_the_words_in_it(
    api: httpx.AsyncClient, odd: str
) -> None:
    plain = (await api.get("/api/search", params={"q": "WildFly"})).json()
    response = await api.get("/api/search", params={"q": odd})
    assert response.status_code == 200
    # The syntax it breaks is read as text: the word still finds its article first.
    assert response.json()["results"][0]["id"] == plain["results"][0]["id"]


@pytest.mark.parametrize("odd", ['"', "-", "OR OR", "((", "title:*", "\\", "🎪"])
async def test_a_string_of_no_words_is_answered_not_failed(
    api: httpx.AsyncClient, odd: str
) -> None:
    response = await api.get("/api/search", params={"q": odd})
    assert response.status_code == 200
    assert set(response.json()) >= {"total", "results"}


async def test_a_search_of_many_prefixes_is_refused_before_the_cluster_pays(
    api: httpx.AsyncClient,
) -> None:
    # 125 one-letter prefixes took 1.75 s of the node's CPU per search.
    many = " ".join(f"{letter}*" for letter in "abcdefghij")
    for q in (many, "a* Java"):
        response = await api.get("/api/search", params={"q": q})
        assert response.status_code == 400
        assert "ending in *" in response.json()["detail"] or "end in *" in response.json()["detail"]
    long_source = await api.get("/api/search", params={"q": "Java", "source": "s" * 201})
    assert long_source.status_code == 422  # a filter value as long as a saved search takes
    saved = await api.post("/api/saved-searches", json={"q": many})
    assert saved.status_code == 422
    assert (await api.get("/api/search", params={"q": "Jav* Red~"})).status_code == 200


async def test_bad_paging_is_a_clear_client_error(api: httpx.AsyncClient) -> None:
    too_deep = await api.get("/api/search", params={"page": 2000, "size": 10})
    too_big = await api.get("/api/search", params={"size": 5000})

    assert too_deep.status_code == 400
    assert "10000" in too_deep.json()["detail"]
    assert too_big.status_code == 422


async def test_latest_quotes_and_ticker(api: httpx.AsyncClient) -> None:
    body = (await api.get("/api/quotes/latest")).json()

    assert [q["base"] for q in body["quotes"]] == ["KGS", "KZT", "TJS", "UZS", "TMT"]
    assert body["ticker"] == [
        "KGS/USD = 0.01127",
        "KZT/USD = 0.002110",
        "TJS/USD = 0.09123",
        "UZS/USD = 0.00008193",
        "TMT/USD = 0.2857",
    ]
    assert all(q["as_of"] == "2023-09-27" and q["provider"] == "cbr" for q in body["quotes"])


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"elasticsearch": True}
    assert ready.json()["details"]["redis_live_ticker"] is True
    assert "process_cpu_seconds_total" in (await api.get("/metrics")).text


async def test_an_indexed_url_of_another_scheme_is_never_served(
    api: httpx.AsyncClient, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    [kept, spoiled] = (await api.get("/api/search", params={"q": "Java", "size": 2})).json()[
        "results"
    ]
    # As a document indexed before the event contract refused such URLs would hold it.
    await es.update(
        index=namespace.articles,
        id=spoiled["id"],
        doc={"url": "javascript:alert(document.cookie)"},
        refresh=True,
    )

    found = (await api.get("/api/search", params={"q": "Java", "size": 50})).json()
    feed = await api.get("/api/search.atom", params={"q": "Java"})
    linked = await api.get(f"/articles/{kept['id']}")

    assert spoiled["id"] not in {hit["id"] for hit in found["results"]}
    assert kept["id"] in {hit["id"] for hit in found["results"]}
    assert "javascript:" not in feed.text
    assert spoiled["title"] not in feed.text
    assert f'<a href="{kept["url"]}" rel="noopener">Read the original' in linked.text
    for address in (f"/api/articles/{spoiled['id']}", f"/articles/{spoiled['id']}"):
        unlinked = await api.get(address)
        assert unlinked.status_code == 404, address
        assert "javascript:" not in unlinked.text


async def test_an_article_past_the_highlighters_reach_is_found_and_fed(
    api: httpx.AsyncClient, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # Past the index's highlight limit (1,000,000 characters), Elasticsearch refused
    # every search that found the article, and the newest-first feed.
    [found] = (await api.get("/api/search", params={"q": "Java", "size": 1})).json()["results"]
    body = "Java " + "and then some more words " * 45_000 + "Java."
    await es.update(index=namespace.articles, id=found["id"], doc={"body": body}, refresh=True)

    search = await api.get("/api/search", params={"q": "Java"})
    feed = await api.get("/api/search.atom")

    assert search.status_code == feed.status_code == 200
    assert found["id"] in {hit["id"] for hit in search.json()["results"]}


async def test_a_search_elasticsearch_refuses_is_a_400_page_on_the_page(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    """An articles index not made by Caravan (its dates mapped as text) makes Elasticsearch
    refuse a newest-first search with a 400 of its own: a person gets it as a page, a
    program as JSON."""
    await es.indices.create(
        index=namespace.articles, mappings={"properties": {"published_at": {"type": "text"}}}
    )
    async with query_client(settings) as client:
        page = await client.get("/", params={"q": "x", "sort": "newest"})
        api = await client.get("/api/search", params={"q": "x", "sort": "newest"})
    assert page.status_code == api.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "Elasticsearch refused the search" in page.text
    assert api.json()["detail"].startswith("Elasticsearch refused the search")


async def test_a_cluster_that_never_answers_costs_a_search_its_budget_then_a_503(
    settings: Settings,
) -> None:
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read()  # a black-holed node: the request is read, never answered

    async with peer(silent) as url:
        quick = replace(
            settings,
            elasticsearch=settings.elasticsearch.model_copy(update={"url": url}),
            query=settings.query.model_copy(update={"search_timeout": 0.2}),
        )
        # The client's default (30 s a try, three tries) held a search 90 s.
        async with query_client(quick) as client, asyncio.timeout(20):
            answer = await client.get("/api/search", params={"q": "caravan"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
