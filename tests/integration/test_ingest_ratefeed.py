"""ingest and ratefeed against the real Redis: what they put on the streams."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from services import cli
from services.ingest.app import ingest_configured_once, ingest_once
from services.ingest.feeds import FeedError
from services.ratefeed.app import ratefeed_once
from services.ratefeed.providers import RatesError
from shared.events import ArticleEvent, QuoteEvent
from shared.settings import Settings
from shared.streams import DATA_FIELD
from tests.conftest import REALDATA, Namespace
from tests.streams import entries

pytestmark = pytest.mark.integration


async def _events(redis: Redis, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in await entries(redis, stream)]


async def test_ingest_publishes_one_event_per_feed_item(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    result = await ingest_once(settings, str(REALDATA / "feed-heise-developer.atom"), name="heise")

    entries = await _events(redis, namespace.streams.articles)
    assert result.published == len(entries) == 15
    events = [ArticleEvent.model_validate_json(e[DATA_FIELD]) for e in entries]
    assert {e.source for e in events} == {"heise"}
    assert "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei" in {e.title for e in events}
    # One field, plain JSON: readable by any consumer, not FastStream's binary envelope.
    assert all(set(e) == {DATA_FIELD} and e[DATA_FIELD].startswith(b"{") for e in entries)


# A feed's links as sites write them (tests/data/feed-hostile-links.rss), and the keys
# the code before URLs were escaped gave them: changing one re-keys an indexed article.
HOSTILE_FEED = Path(__file__).resolve().parents[1] / "data" / "feed-hostile-links.rss"
PRE_CHANGE_KEYS = [
    "dc683e888e2c07b05b7bf6ca3595f306",
    "f353efaa803e925e828d78b583d5b483",
    "4fc62fc4e6be8257bea46c2cd09a8ee1",
    "494f9d50e7176bb440b6dc251c7739aa",
    "680bb0a0490531602d83c6f8257aeb8d",
    "dd827b3aad5b2d5aa6d0c42547f8a70a",
    "57ddc068317ec4aa2d35c916c7aa5718",
]
# What RFC 3986 allows in a URI, a `%` only opening an escape.
URI = re.compile(rb"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


async def test_links_with_spaces_and_controls_go_on_the_stream_as_uris_under_their_keys(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    await ingest_once(settings, str(HOSTILE_FEED), name="news.example.kz")

    data = [e[DATA_FIELD] for e in await _events(redis, namespace.streams.articles)]
    # The bytes on the stream, as a consumer in another language reads them.
    urls = [
        url.encode()
        for d in data
        for url in (orjson.loads(d)["url"], orjson.loads(d)["canonical_url"])
    ]
    assert len(urls) == 14
    assert all(URI.fullmatch(url) for url in urls), urls
    assert sorted(orjson.loads(d)["idempotency_key"] for d in data) == sorted(PRE_CHANGE_KEYS)
    events = [ArticleEvent.model_validate_json(d) for d in data]
    assert sorted(e.idempotency_key for e in events) == sorted(PRE_CHANGE_KEYS)


async def test_ingest_of_a_malformed_feed_reports_and_publishes_nothing_broken(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    result = await ingest_once(settings, str(REALDATA / "feed-nenoksa-turbo-malformed.xml"))

    assert (result.published, result.left_out) == (0, {"unusable": 1})
    assert await redis.xlen(namespace.streams.articles) == 0


async def test_ingest_of_something_that_is_no_feed_raises_a_clear_error(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    with pytest.raises(FeedError, match="not a readable RSS/Atom feed"):
        await ingest_once(settings, str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))
    assert await redis.xlen(namespace.streams.articles) == 0


async def test_configured_sources_keep_going_past_a_broken_one(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    settings = replace(
        settings,
        ingest=settings.ingest.model_copy(update={"sources": REALDATA.parent / "sources.toml"}),
    )
    results = {r.source: r for r in await ingest_configured_once(settings)}

    assert results["heise.de"].published == 15
    assert results["nenoksa"].published == 0
    assert await redis.xlen(namespace.streams.articles) == sum(
        r.published for r in results.values()
    )


def _cbr_rate(code: str) -> Decimal:
    """X/USD straight from the file, independently of the service's parser."""
    text = (REALDATA / "cbr-xml-daily-2023-09-27.xml").read_text(encoding="utf-8")

    def per_unit(char_code: str) -> Decimal:
        match = re.search(
            rf"<CharCode>{char_code}</CharCode>\s*<Nominal>(\d+)</Nominal>"
            rf"\s*<Name>[^<]*</Name>\s*<Value>([\d,]+)</Value>",
            text,
        )
        assert match, char_code
        return Decimal(match.group(2).replace(",", ".")) / Decimal(match.group(1))

    return per_unit(code) / per_unit("USD")


async def test_ratefeed_publishes_the_five_currencies_exactly_and_only_once(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    source = str(REALDATA / "cbr-xml-daily-2023-09-27.xml")
    first = await ratefeed_once(settings, source)
    again = await ratefeed_once(settings, source)

    entries = await _events(redis, namespace.streams.quotes)
    quotes = {q.base: q for q in (QuoteEvent.model_validate_json(e[DATA_FIELD]) for e in entries)}
    assert len(first) == len(entries) == 5
    assert again == []  # the same as-of date again is no news
    for code in ("KGS", "KZT", "TJS", "UZS", "TMT"):
        assert quotes[code].rate == _cbr_rate(code)
        assert quotes[code].as_of.isoformat() == "2023-09-27"
        assert quotes[code].change_pct is None


async def test_ratefeed_rejects_a_document_without_its_date(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    broken = REALDATA / "cbr-xml-daily-2023-09-27.xml"
    path = tmp_path / "no-date.xml"
    path.write_text(broken.read_text(encoding="utf-8").replace('Date="27.09.2023" ', ""))

    with pytest.raises(RatesError, match="no valid Date"):
        await ratefeed_once(settings, str(path))
    assert await redis.xlen(namespace.streams.quotes) == 0


def _long_feed(path: Path, items: int) -> Path:
    """A feed file of `items` articles, one of them listed twice (under a tracking
    parameter) and one without a link."""
    body = "".join(
        f"<item><title>Item {n}</title><link>https://invented.example/{n}</link></item>"
        for n in range(items)
    )
    body += (
        "<item><title>Item 5 again</title>"
        "<link>https://invented.example/5?utm_source=rss</link></item>"
        "<item><title>No link</title></item>"
    )
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Long</title>'
        f"{body}</channel></rss>",
        encoding="utf-8",
    )
    return path


def test_ingest_source_reads_the_whole_file_and_says_what_it_left_out(
    namespace: Namespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = _long_feed(tmp_path / "long.xml", 3000)
    client = SyncRedis.from_url(os.environ["REDIS_URL"])
    try:
        cli.main(["ingest", "--source", str(feed)])
        assert client.xlen(namespace.streams.articles) == 3000
        assert capsys.readouterr().out.splitlines()[-1] == (
            "long (feed): 3000 articles published (3000 new, 0 updated), 0 unchanged, "
            "2 items left out (duplicate: 1, unusable: 1)"
        )

        cli.main(
            [
                "ingest",
                "--source",
                str(_long_feed(tmp_path / "longer.xml", 3100)),
                "--limit",
                "1000",
            ]
        )
        assert client.xlen(namespace.streams.articles) == 3000  # its first 1000: as they were
        assert capsys.readouterr().out.splitlines()[-1] == (
            "longer (feed): 0 articles published (0 new, 0 updated), 1000 unchanged, "
            "2102 items left out (duplicate: 1, limit: 2100, unusable: 1)"
        )
    finally:
        keys = list(client.scan_iter(match=f"{namespace.stream_prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
