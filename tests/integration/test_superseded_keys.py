"""One article, one document: a feed item first published from the feed's own fields
(its page unreadable) and then from its page, which declares another canonical URL.

The real ingest path polls a loopback site twice; the real indexer, on real Redis and
Elasticsearch, then holds the article once, under the page's canonical key, and so
does every replay of the stream: a new consumer group, `caravan reindex --from-streams`.
"""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.documents import BulkAction
from services.indexer.hold import Hold
from services.indexer.mappings import ensure_indices
from services.indexer.reindex import reindex
from services.ingest.app import ingest_once
from services.ingest.urls import canonicalize_url
from shared.consumer import Entry
from shared.events import article_key
from shared.index import IndexNames
from shared.settings import Settings
from tests.conftest import REALDATA, Namespace
from tests.integration.conftest import MakeConsumer, drain, ids_in, published_articles
from tests.loopback import Hit, LoopbackServer, Reply, static
from tests.writing import Letters, writer_on

pytestmark = pytest.mark.integration

LSM_PAGE = (REALDATA / "article-lsm-lv.html").read_text(encoding="utf-8")
LSM_CANONICAL = "https://www.lsm.lv/raksts/zinas/arzemes/norvegija-pec-zemes-nogruvuma-pieci-bojagajusie.a387519/"
LSM_TEXT = (REALDATA / "article-lsm-lv.expected.txt").read_text(encoding="utf-8")
LINK, CANONICAL = "/news?id=387519", "/raksts/norvegija-pec-zemes-nogruvuma.a387519/"


def _serve(web: LoopbackServer) -> dict[str, bool]:
    """A feed of one item linking `LINK`, whose page is down until `up` is set, then
    declares `CANONICAL` (the same site, a pretty path) as its address."""
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>LSM</title>'
        f"<link>{web.url('/')}</link><item><title>Zemes nogruvums Norvēģijā</title>"
        f"<link>{web.url(LINK)}</link><description>Pieci bojāgājušie.</description>"
        "<pubDate>Fri, 28 Aug 2026 15:19:10 +0000</pubDate></item></channel></rss>"
    )
    web.routes["/feed.xml"] = static(feed.encode(), "application/rss+xml")
    page = LSM_PAGE.replace(LSM_CANONICAL, web.url(CANONICAL)).encode()
    state = {"up": False}

    def article(_: Hit) -> Reply:
        if state["up"]:
            return Reply(200, page, {"Content-Type": "text/html; charset=utf-8"})
        # Longer than ingest waits: the page is unreadable for this poll.
        return Reply(503, b"", {"Retry-After": "3600"})

    web.routes[LINK] = article
    return state


async def _ingest_through_the_outage(
    web: LoopbackServer, redis: Redis, namespace: Namespace, settings: Settings
) -> tuple[str, str]:
    """Both polls; the feed link's key and the page's canonical key."""
    state = _serve(web)
    first = await ingest_once(settings, web.url("/feed.xml"), name="lsm")
    state["up"] = True
    second = await ingest_once(settings, web.url("/feed.xml"), name="lsm")
    assert (first.published, second.published) == (1, 1)
    events = await published_articles(redis, namespace)
    assert [e.extraction for e in events] == ["feed", "page"]
    link_key = article_key(canonicalize_url(web.url(LINK)))
    page_key = article_key(canonicalize_url(web.url(CANONICAL)))
    assert [e.idempotency_key for e in events] == [link_key, page_key]
    return link_key, page_key


async def _the_one_document(es: AsyncElasticsearch, index: str, key: str) -> None:
    assert await ids_in(es, index) == [key]
    document = (await es.get(index=index, id=key))["_source"]
    assert document["extraction"] == "page"
    assert LSM_TEXT.split("\n\n")[1] in document["body"]


async def test_an_article_read_from_its_page_after_its_feed_is_indexed_once(
    web: LoopbackServer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    web_settings: Settings,
    make_consumer: MakeConsumer,
) -> None:
    names = IndexNames(namespace.index_prefix)
    state = _serve(web)
    await ingest_once(web_settings, web.url("/feed.xml"), name="lsm")
    await drain(make_consumer(), es)  # the feed's version is searchable meanwhile
    link_key = article_key(canonicalize_url(web.url(LINK)))
    assert await ids_in(es, names.articles) == [link_key]
    state["up"] = True
    await ingest_once(web_settings, web.url("/feed.xml"), name="lsm")
    await drain(make_consumer(), es)

    await _the_one_document(es, names.articles, article_key(canonicalize_url(web.url(CANONICAL))))


async def test_a_replay_of_the_stream_ends_with_the_article_once(
    web: LoopbackServer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    web_settings: Settings,
    make_consumer: MakeConsumer,
) -> None:
    names = IndexNames(namespace.index_prefix)
    _, page_key = await _ingest_through_the_outage(web, redis, namespace, web_settings)
    await drain(make_consumer(), es)
    # Another group reads every entry again from the start, in order, into the index.
    await drain(make_consumer(group="replay"), es)
    await _the_one_document(es, names.articles, page_key)
    # And into a new index, from the streams alone.
    result = await reindex(
        es, names, names.articles, web_settings.common, redis=redis, streams=namespace.streams
    )
    await es.indices.refresh(index=result.new_index)
    await _the_one_document(es, result.new_index, page_key)


async def test_a_superseded_key_another_article_holds_since_is_kept(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    # A page declaring another article's address overwrote the key the feed's copy had
    # been published under; that copy's delete must not take the other article with it
    # (helper-114: it was lost for good, its own lead unchanged).
    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names, settings.common)
    # And one whose copy under a declared canonical was never stored (dead-lettered):
    # the article found there is older, and another's (helper-115).
    taken, lost, moved, older = "a" * 32, "b" * 32, "c" * 32, "d" * 32
    stored = [
        BulkAction(names.articles, taken, 2000, b'{"title": "another article"}'),
        BulkAction(names.articles, lost, 1500, b'{"title": "the feed copy"}'),
        BulkAction(names.articles, older, 1000, b'{"title": "a third article"}'),
    ]
    page = BulkAction(
        names.articles,
        moved,
        3000,
        b'{"title": "the page"}',
        supersedes=((taken, 1500), (lost, 1500), (older, 2000)),
    )
    ledger, hold = Letters(), Hold()
    writer = writer_on(es, ledger, hold)
    await writer.write(
        [(Entry(namespace.streams.articles, f"{n}-0", {}), a) for n, a in enumerate(stored)]
    )
    await writer.write([(Entry(namespace.streams.articles, "9-0", {}), page)])
    await es.indices.refresh(index=names.articles)

    assert await ids_in(es, names.articles) == [taken, moved, older]
    assert ledger.acked == ["0-0", "1-0", "2-0", "9-0"]
    assert ledger.letters == []
