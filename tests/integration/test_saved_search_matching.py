"""Saved searches matched by the real indexer against the real cluster: saved through the
API, articles published to the articles stream, the consumer drained, and the matches
read off their own stream — exactly the matching articles, each once, never for a
deleted saved search, a delivery again or a new version with the same text, and never
at the cost of indexing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from jsonschema import Draft202012Validator
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.indexer import matcher as matcher_module
from services.indexer.consumer import Consumer
from services.indexer.deadletters import letter_writer
from services.indexer.mappings import ensure_indices
from services.indexer.matcher import Matcher
from shared.clients import make_elasticsearch
from shared.events import ArticleEvent, SavedSearchMatch, content_hash
from shared.index import IndexNames
from shared.saved_searches import logged_id
from shared.settings import ElasticsearchSettings, IndexerSettings, Settings
from shared.streams import DATA_FIELD, add_events
from tests.conftest import REPO, Namespace
from tests.integration.conftest import drain, ids_in, pending, publish
from tests.integration.test_following import STORIES, story
from tests.logs import Said
from tests.pipeline import query_client
from tests.streams import entries

pytestmark = pytest.mark.integration
BuildIndexer = Callable[..., Consumer]


@pytest.fixture
async def indexer(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> BuildIndexer:
    """An in-process indexer with its matcher; `matcher_es` to give the matcher its own
    client, `time_zone` its readers' calendar."""
    letters = letter_writer(redis, namespace.streams, settings.indexer.retention_hours)

    async def publish_matches(matches: list[SavedSearchMatch]) -> None:
        await add_events(redis, namespace.streams.matches, matches)

    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names, settings.common)

    def build(
        matcher_es: AsyncElasticsearch | None = None, time_zone: str = "UTC", **overrides: Any
    ) -> Consumer:
        defaults: dict[str, Any] = {"consumer": "live", "block_ms": 50, "retry_base_delay": 0.01}
        indexer_settings = IndexerSettings(**(defaults | overrides))
        matcher = Matcher(
            matcher_es or es,
            redis,
            names,
            namespace.streams,
            indexer_settings,
            publish_matches,
            time_zone=time_zone,
        )
        return Consumer(
            redis,
            es,
            namespace.streams,
            names,
            indexer_settings,
            letters,
            matcher=matcher,
        )

    return build


@pytest.fixture
async def api(settings: Settings, indexer: BuildIndexer) -> AsyncIterator[httpx.AsyncClient]:
    query = settings.query.model_copy(update={"rate_limit": 0})
    async with query_client(replace(settings, query=query)) as client:
        yield client


async def _save(api: httpx.AsyncClient, **body: Any) -> str:
    response = await api.post("/api/saved-searches", json=body)
    assert response.status_code == 201, response.text
    saved_id: str = response.json()["id"]
    return saved_id


async def _index(
    indexer: BuildIndexer, redis: Redis, namespace: Namespace, *events: ArticleEvent
) -> None:
    await publish(redis, namespace.streams.articles, *events)
    await indexer().run(burst=True)


async def _matches(redis: Redis, namespace: Namespace) -> list[SavedSearchMatch]:
    return [
        SavedSearchMatch.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.matches)
    ]


def _pairs(matches: list[SavedSearchMatch]) -> list[tuple[str, str]]:
    return sorted((m.saved_search_id, m.article_id) for m in matches)


def _counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _id(n: int) -> str:
    return STORIES[n - 1].idempotency_key


async def test_exactly_the_matching_articles_are_announced_each_once(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    oil = await _save(api, q="Neft")
    tashkent = await _save(api, q="Toshkent", source=["kun.uz"])
    russian = await _save(api, language=["ru"])
    nothing = await _save(api, q="Buxoro")

    await _index(indexer, redis, namespace, *STORIES)

    matches = await _matches(redis, namespace)
    assert _pairs(matches) == sorted(
        [(oil, _id(4)), (tashkent, _id(1)), (tashkent, _id(2)), (russian, _id(6))]
    )
    assert nothing not in {m.saved_search_id for m in matches}
    # Each the article as indexed, and what the saved search's own feed shows.
    for match in matches:
        article = next(s for s in STORIES if s.idempotency_key == match.article_id)
        assert (match.url, match.title, match.source) == (
            article.url,
            article.title,
            article.source,
        )
        assert (match.published_at, match.fetched_at) == (article.published_at, article.fetched_at)
        assert match.content_hash == article.content_hash
        assert (
            match.idempotency_key
            == f"{match.saved_search_id}/{article.idempotency_key}/{article.content_hash}"
        )
    for saved_id in (oil, tashkent, russian, nothing):
        feed = await api.get(f"/api/saved-searches/{saved_id}.atom")
        assert feed.text.count("<entry") == sum(m.saved_search_id == saved_id for m in matches)


async def test_a_saved_search_announces_its_matches_of_the_day_and_no_more(
    api: httpx.AsyncClient,
    indexer: BuildIndexer,
    redis: Redis,
    namespace: Namespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = Said()
    monkeypatch.setattr(matcher_module, "log", said)
    tashkent = await _save(api, q="Toshkent", source=["kun.uz"])  # matches two stories
    oil = await _save(api, q="Neft")
    over = _counted("caravan_indexer_matches_over_day_total")
    await publish(redis, namespace.streams.articles, *STORIES)
    await indexer(match_per_search_day=1).run(burst=True)

    matches = await _matches(redis, namespace)
    assert sorted(m.saved_search_id for m in matches) == sorted([tashkent, oil])
    assert _counted("caravan_indexer_matches_over_day_total") - over == 1
    # Told once, naming the search by a digest: its id is the key to it.
    [told] = [line for line in said.lines if line["event"].endswith("matches of the day")]
    assert told["saved_searches"] == [logged_id(tashkent)]
    # Its feed still lists both.
    feed = await api.get(f"/api/saved-searches/{tashkent}.atom")
    assert feed.text.count("<entry") == 2


async def test_readers_days_are_those_of_the_configured_zone_everywhere(
    settings: Settings, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    """At 01:00 in Tashkent on 1 December it is still 30 November in UTC: with
    CARAVAN_TIME_ZONE=Asia/Tashkent the article is on 1 December for the date filter,
    the month facet, a saved search's matches and the page alike."""
    late = story(9, "Toshkent metrosi tungi qatnov").model_copy(
        update={"published_at": datetime(2026, 11, 30, 20, 0, tzinfo=UTC)}
    )
    early = story(10, "Toshkent metrosi kunduzgi qatnov").model_copy(
        update={"published_at": datetime(2026, 11, 30, 10, 0, tzinfo=UTC)}
    )
    local = replace(
        settings,
        common=settings.common.model_copy(update={"time_zone": "Asia/Tashkent"}),
        query=settings.query.model_copy(update={"rate_limit": 0}),
    )
    async with query_client(local) as api:
        december = await _save(api, q="metrosi", date_from="2026-12-01", date_to="2026-12-01")
        await publish(redis, namespace.streams.articles, late, early)
        await indexer(time_zone="Asia/Tashkent").run(burst=True)

        assert _pairs(await _matches(redis, namespace)) == [(december, late.idempotency_key)]
        response = await api.get("/api/search", params={"q": "metrosi", "date_from": "2026-12-01"})
        found = response.json()
        assert [hit["url"] for hit in found["results"]] == [late.url]
        everything = (await api.get("/api/search", params={"q": "metrosi"})).json()
        assert everything["facets"]["month"] == [
            {"value": "2026-12", "count": 1},
            {"value": "2026-11", "count": 1},
        ]
        page = await api.get("/", params={"q": "metrosi tungi", "lang": "en"})
        assert '<time datetime="2026-11-30T20:00:00Z">1 December 2026</time>' in page.text


async def test_a_day_whose_midnight_a_clock_change_skips_ends_where_the_next_begins(
    settings: Settings,
    indexer: BuildIndexer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
) -> None:
    # Santiago skipped the midnight that began 6 September 2026 (00:00 -04 was 01:00
    # -03): a 23-hour day, which `lte 6 September||/d` rounded up to its first moment
    # plus 24 hours, an hour into the 7th (review).
    after = story(11, "Santiago metro").model_copy(
        update={"published_at": datetime(2026, 9, 7, 3, 30, tzinfo=UTC)}  # 00:30 on the 7th
    )
    local = replace(
        settings,
        common=settings.common.model_copy(update={"time_zone": "America/Santiago"}),
        query=settings.query.model_copy(update={"rate_limit": 0}),
    )
    await publish(redis, namespace.streams.articles, after)
    await drain(indexer(), es)
    async with query_client(local) as api:
        sixth = await api.get("/api/search", params={"date_to": "2026-09-06"})
        seventh = await api.get("/api/search", params={"date_from": "2026-09-07"})
    assert sixth.json()["total"] == 0
    assert seventh.json()["total"] == 1


async def test_matches_on_the_wire_are_what_the_committed_schema_says(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    await _save(api, q="metro")
    await _index(indexer, redis, namespace, *STORIES)

    schema = json.loads((REPO / "docs" / "schemas" / "SavedSearchMatch.json").read_text())
    validator = Draft202012Validator(schema)
    wire = [
        json.loads(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.matches)
    ]
    assert wire
    for event in wire:
        assert list(validator.iter_errors(event)) == []
        assert set(schema["required"]) <= set(event)


async def test_only_articles_stored_after_a_search_is_saved_are_announced(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    await _index(indexer, redis, namespace, STORIES[3])
    oil = await _save(api, q="Neft")
    await indexer().run(burst=True)
    assert await _matches(redis, namespace) == []

    later = story(7, "Neft qazib olish oshdi", days=6)
    await _index(indexer, redis, namespace, later)
    assert _pairs(await _matches(redis, namespace)) == [(oil, later.idempotency_key)]


async def test_a_deleted_saved_search_announces_nothing(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    kept = await _save(api, q="Neft")
    deleted = await _save(api, q="Neft narxi")
    gone_before = await _save(api, q="metro")
    assert (await api.delete(f"/api/saved-searches/{gone_before}")).status_code == 204

    await _index(indexer, redis, namespace, STORIES[3])
    assert _pairs(await _matches(redis, namespace)) == sorted([(kept, _id(4)), (deleted, _id(4))])

    assert (await api.delete(f"/api/saved-searches/{deleted}")).status_code == 204
    more = story(8, "Neft narxi yana tushdi", days=7)
    await _index(indexer, redis, namespace, more, *STORIES[:3])
    assert _pairs(await _matches(redis, namespace)) == sorted(
        [(kept, _id(4)), (deleted, _id(4)), (kept, more.idempotency_key)]
    )


async def test_a_stored_search_naming_another_id_stands_in_for_no_other(
    api: httpx.AsyncClient,
    indexer: BuildIndexer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = Said()
    monkeypatch.setattr(matcher_module, "log", said)
    oil = await _save(api, q="Neft")
    impostor = await _save(api, q="metro")
    # Rewritten by hand (or by a tool) to say it is the other one, with its own query.
    index = IndexNames(namespace.index_prefix).saved_searches
    source = (await es.get(index=index, id=oil))["_source"]
    await es.index(index=index, id=impostor, document=source | {"q": "metro"}, refresh=True)

    await _index(indexer, redis, namespace, STORIES[3])
    assert _pairs(await _matches(redis, namespace)) == [(oil, _id(4))]
    # Told with both named by digest: the id its source names is the key to the other.
    assert said.events("saved search unreadable") == ["saved search unreadable, skipped"]
    assert oil not in repr(said.lines)
    assert impostor not in repr(said.lines)


async def test_a_stored_search_that_does_not_read_is_told_once_and_the_rest_match(
    api: httpx.AsyncClient,
    indexer: BuildIndexer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = Said()
    monkeypatch.setattr(matcher_module, "log", said)
    oil = await _save(api, q="Neft")
    index = IndexNames(namespace.index_prefix).saved_searches
    await es.index(index=index, id="b" * 22, document={"id": "b" * 22, "q": 7}, refresh=True)

    # A batch an article: a matching round each, the saved searches listed at each.
    more = (story(7, "Neft qazib olish oshdi"), story(8, "Neft narxi oshdi"))
    await publish(redis, namespace.streams.articles, STORIES[3], *more)
    await indexer(batch_size=1).run(burst=True)

    assert [pair[0] for pair in _pairs(await _matches(redis, namespace))] == [oil] * 3
    assert said.events("saved search unreadable") == ["saved search unreadable, skipped"]
    # Named by a digest: the id is the key to the saved search, logs are read more widely.
    [line] = [line for line in said.lines if line["event"].startswith("saved search unread")]
    assert line["id"] == logged_id("b" * 22)
    assert "b" * 22 not in repr(said.lines)


async def test_a_memory_of_announcements_caravan_did_not_write_fails_no_round(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    oil, price = await _save(api, q="Neft"), await _save(api, q="Neft narxi")
    memory = f"{namespace.streams.matches}:announced:"
    await redis.hset(f"{memory}{oil}:{_id(4)}", mapping={"a": "b"})  # another type
    await redis.set(f"{memory}{price}:{_id(4)}", b"\xff\xfe")  # not UTF-8

    await _index(indexer, redis, namespace, STORIES[3])
    assert _pairs(await _matches(redis, namespace)) == sorted([(oil, _id(4)), (price, _id(4))])
    assert await redis.get(f"{memory}{oil}:{_id(4)}") == STORIES[3].content_hash.encode()


async def test_a_delivery_again_or_the_same_text_announces_nothing_a_new_text_does(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    oil = await _save(api, q="Neft")
    first = STORIES[3]
    await _index(indexer, redis, namespace, first)
    assert len(await _matches(redis, namespace)) == 1

    # The same event again (a replay): stored already, refused as stale, not matched.
    await _index(indexer, redis, namespace, first)
    # A newer version with the same title and body (its summary changed): stored and
    # matched, but its text was announced already.
    same_text = first.model_copy(
        update={
            "summary": "Yangilangan qisqacha",
            "fetched_at": first.fetched_at + timedelta(hours=1),
        }
    )
    await _index(indexer, redis, namespace, same_text)
    assert len(await _matches(redis, namespace)) == 1

    # A newer version whose text changed and still matches: announced again.
    body = "Neft narxi ikki foizga tushdi. Yangilandi."
    changed = same_text.model_copy(
        update={
            "body": body,
            "content_hash": content_hash(first.title, body),
            "fetched_at": first.fetched_at + timedelta(hours=2),
        }
    )
    # And one that no longer matches: nothing.
    unrelated_body = "Gaz narxi o'zgarmadi."
    unrelated = changed.model_copy(
        update={
            "title": "Gaz narxi",
            "summary": "Gaz",
            "body": unrelated_body,
            "content_hash": content_hash("Gaz narxi", unrelated_body),
            "fetched_at": first.fetched_at + timedelta(hours=3),
        }
    )
    await _index(indexer, redis, namespace, changed)
    await _index(indexer, redis, namespace, unrelated)

    matches = await _matches(redis, namespace)
    assert [(m.saved_search_id, m.article_id, m.content_hash) for m in matches] == [
        (oil, first.idempotency_key, first.content_hash),
        (oil, first.idempotency_key, changed.content_hash),
    ]
    assert matches[1].version > matches[0].version
    assert len({m.idempotency_key for m in matches}) == 2


async def test_matching_that_fails_never_stops_indexing(
    api: httpx.AsyncClient,
    indexer: BuildIndexer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
) -> None:
    await _save(api, q="metro")
    failures = ("caravan_indexer_match_failures_total", {"reason": "elasticsearch"})
    unmatched = "caravan_indexer_match_unmatched_articles_total"
    before, unmatched_before = _counted(failures[0], **failures[1]), _counted(unmatched)
    # The matcher's cluster is away (nothing listens there); the writer's is not.
    away = make_elasticsearch(ElasticsearchSettings(url="http://127.0.0.1:9", request_timeout=2))
    try:
        await publish(redis, namespace.streams.articles, *STORIES)
        await indexer(matcher_es=away).run(burst=True)
    finally:
        await away.close()

    await es.indices.refresh(index=namespace.articles)
    assert await ids_in(es, namespace.articles) == sorted(s.idempotency_key for s in STORIES)
    assert await pending(redis, namespace.streams.articles) == 0
    assert await _matches(redis, namespace) == []
    assert _counted(failures[0], **failures[1]) > before
    assert _counted(unmatched) - unmatched_before == len(STORIES)


async def test_a_batch_past_the_backlog_is_counted_and_indexed(
    api: httpx.AsyncClient,
    indexer: BuildIndexer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
) -> None:
    await _save(api, q="metro")
    before = _counted("caravan_indexer_match_failures_total", reason="backlog")
    await publish(redis, namespace.streams.articles, *STORIES)
    await indexer(match_backlog=2, batch_size=100).run(burst=True)

    await es.indices.refresh(index=namespace.articles)
    assert len(await ids_in(es, namespace.articles)) == len(STORIES)
    assert await pending(redis, namespace.streams.articles) == 0
    assert _counted("caravan_indexer_match_failures_total", reason="backlog") == before + 1
    # The two articles that did fit were matched: at most those two can be announced.
    assert len(await _matches(redis, namespace)) <= 2


async def test_saved_searches_beyond_a_clause_budget_are_split_and_all_matched(
    api: httpx.AsyncClient, indexer: BuildIndexer, redis: Redis, namespace: Namespace
) -> None:
    saved = [await _save(api, q=word) for word in ("metro", "Neft", "Toshkent", "narxi")]
    # A budget of 16 estimated clauses: one saved search per search of the _msearch.
    await publish(redis, namespace.streams.articles, *STORIES)
    await indexer(match_max_clauses=16).run(burst=True)
    by_search = {
        s: {m.article_id for m in await _matches(redis, namespace) if m.saved_search_id == s}
        for s in saved
    }
    assert by_search[saved[1]] == {_id(4)}
    assert _id(4) in by_search[saved[3]]
    assert all(by_search.values())


async def test_a_downstream_group_of_the_matches_is_listed_by_caravan_groups(
    redis: Redis, namespace: Namespace
) -> None:
    await redis.xgroup_create(namespace.streams.matches, "mail", id="0", mkstream=True)
    listed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "groups",
        "list",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ,
    )
    out, err = await asyncio.wait_for(listed.communicate(), 120)
    assert listed.returncode == 0, err.decode()
    assert f"{namespace.streams.matches}  mail: behind 0, pending 0" in out.decode()
