"""What the indexer writes, byte for byte, on real articles: the bulk lines of the
sample feeds' items, the real article pages and a varied corpus of their vocabulary,
through every path (a stream entry, an event object, a reindexed `_source`).

The digests were taken from the code before the decode path was made cheaper (#27):
any change to them changes indexed documents. A change meant to do that (a new
derived field, another stemmer) updates them, and says so.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, uuid5

from hypothesis import given
from hypothesis import strategies as st

from bench.corpus import generate
from services.indexer.decode import Invalid, decode_entry
from services.indexer.documents import BulkAction, article_action, quote_action, stored_source
from services.ingest.extract import extract_article
from services.ingest.feeds import parse_feed
from services.ingest.sources import load_sources
from shared.consumer import Entry
from shared.events import ArticleEvent, QuoteEvent, content_hash
from shared.index import IndexNames
from shared.settings import CommonSettings
from shared.streams import DATA_FIELD, Streams
from tests.conftest import REALDATA, REPO

FETCHED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PAGES = {
    "article-lsm-lv.html": "https://www.lsm.lv/raksts/zinas/arzemes/a387519/",
    "article-heraldsun.html": "http://www.heraldsun.com.au/news/opinion/story-1227261886014",
    "article-dw-fruehburgunder.html": "https://www.dw.com/en/a-16863843",
}
# sha256 of the NDJSON lines, taken at 663a9aa (before #27's decode work).
DIGESTS = {
    "entries": "768f2c552b0067b30753be723d9e9ae13a33aa937f13d23fcb85440a8fe33257",
    "events": "768f2c552b0067b30753be723d9e9ae13a33aa937f13d23fcb85440a8fe33257",
    "reindexed": "c26b845c397cec2b8b94553d59ef718e136f7b5fb0408ae536b8232bba290a82",
    "quotes": "6e62a84819391c8282d4e9f0b47b734ae178484d1932c61e63504a24c83c816f",
}


def _fixed(event: ArticleEvent) -> ArticleEvent:
    # The defaults (a random event_id, the time now) made deterministic.
    return event.model_copy(
        update={"event_id": uuid5(NAMESPACE_URL, event.url), "occurred_at": FETCHED}
    )


def _feed_items() -> list[ArticleEvent]:
    items: list[ArticleEvent] = []
    for source in load_sources(REPO / "samples" / "sources.toml"):
        try:
            items += parse_feed((REALDATA / source.url).read_bytes(), source, FETCHED).events
        except (OSError, ValueError):
            continue  # the deliberately broken sample
    # As parse_feed made them when the digests were taken: feed items said nothing of
    # where their text came from until 2026-12 (an input's change, not the decoding's).
    return [item.model_copy(update={"extraction": None}) for item in items]


def _pages() -> list[ArticleEvent]:
    events = []
    for name, url in PAGES.items():
        page = extract_article((REALDATA / name).read_text(encoding="utf-8"), url)
        assert page is not None
        events.append(
            ArticleEvent(
                source="pages",
                url=url,
                canonical_url=page.canonical_url or url,
                title=page.title,
                summary=page.description,
                body=page.text,
                authors=page.authors,
                language=page.language,
                tags=page.tags,
                fetched_at=FETCHED,
                content_hash=content_hash(page.title, page.text),
                extraction="page",
            )
        )
    return events


def articles() -> list[ArticleEvent]:
    real = _feed_items() + _pages()
    return [_fixed(event) for event in [*real, *generate(real, 400, seed=27)]]


def quotes() -> list[QuoteEvent]:
    return [
        QuoteEvent(
            event_id=uuid5(NAMESPACE_URL, f"quote-{n}"),
            occurred_at=FETCHED,
            base=base,
            rate=Decimal(rate),
            change_pct=Decimal("-0.25") if n % 2 else None,
            as_of=date(2026, 11, 20 + n),
            provider="cbu",
            fetched_at=FETCHED,
            flags=["gap"] if n == 1 else [],
        )
        for n, (base, rate) in enumerate(
            [("UZS", "0.0000830"), ("KZT", "0.00198"), ("KGS", "0.01156")]
        )
    ]


def _digest(lines: list[bytes]) -> str:
    return hashlib.sha256(b"".join(lines)).hexdigest()


def test_stream_entries_give_the_same_bulk_lines() -> None:
    streams, names = Streams(CommonSettings()), IndexNames("")
    lines = []
    for n, event in enumerate(articles()):
        entry = Entry(streams.articles, f"{n}-0", {DATA_FIELD: event.model_dump_json().encode()})
        action = decode_entry(entry, streams, names)
        assert not isinstance(action, Invalid), action
        lines.append(action.ndjson())
    assert _digest(lines) == DIGESTS["entries"]


def test_event_objects_give_the_same_bulk_lines() -> None:
    assert (
        _digest([article_action(e, "articles").ndjson() for e in articles()]) == DIGESTS["events"]
    )


def test_reindexed_sources_give_the_same_documents() -> None:
    sources = [json.loads(article_action(e, "articles").document) for e in articles()]
    lines = [stored_source(source, alias_is_articles=True) for source in sources]
    assert _digest(lines) == DIGESTS["reindexed"]


def test_quotes_give_the_same_bulk_lines() -> None:
    assert _digest([quote_action(q, "quotes").ndjson() for q in quotes()]) == DIGESTS["quotes"]


@given(
    index=st.text(max_size=20),
    doc_id=st.text(max_size=40),
    version=st.integers(min_value=-(2**63), max_value=2**63),
)
def test_the_header_line_is_json_dumps_of_the_header(index: str, doc_id: str, version: int) -> None:
    action = BulkAction(index, doc_id, version, '{"title":"t"}')
    header, document = action.operations()
    assert action.ndjson() == f"{json.dumps(header)}\n{document}\n".encode()


def test_an_action_weighs_its_bytes_on_the_wire() -> None:
    # What bulks are split by (the indexer's writer, caravan reindex): a Chinese
    # article given as text weighed a third of what it sent.
    text = '{"title":"%s"}' % ("漢字" * 1000)
    for document in (text, text.encode()):
        action = BulkAction("articles", "id", 1, document)
        assert len(action.ndjson()) <= action.size <= len(action.ndjson()) + 100
