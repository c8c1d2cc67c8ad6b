"""decode_entry and the bulk actions of services.indexer.documents."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.indexer import decode
from services.indexer.decode import Invalid, decode_entries, decode_entry
from services.indexer.documents import BulkAction, article_action, quote_action
from services.ingest.feeds import parse_feed
from services.ingest.sources import Source
from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.rates import usd_rates
from shared.consumer import Entry
from shared.events import ArticleEvent, QuoteEvent, SupersededKey
from shared.index import IndexNames
from shared.language import analysis
from shared.language.analysis import fold_text, stem_text
from shared.settings import CommonSettings
from shared.streams import DATA_FIELD, Streams

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"
FETCHED_AT = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def streams() -> Streams:
    return Streams(CommonSettings(stream_prefix="t:"))


@pytest.fixture
def names() -> IndexNames:
    return IndexNames("t-")


@pytest.fixture(scope="module")
def article() -> ArticleEvent:
    """A real article: the first item of the andijonfk.uz feed."""
    content = (REALDATA / "feed-andijonfk-uz.xml").read_bytes()
    source = Source(name="andijonfk.uz", url="x", language="uz")
    return parse_feed(content, source, FETCHED_AT).events[0]


@pytest.fixture(scope="module")
def quote() -> QuoteEvent:
    """KGS/USD from the real Bank of Russia document, with its full Decimal precision."""
    official = parse_cbr((REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes())
    rate = usd_rates(official, ("KGS",))["KGS"]
    return QuoteEvent(
        base="KGS",
        rate=rate,
        change_pct=Decimal("-0.0004"),
        previous_rate=Decimal("0.0112771"),
        as_of=official.as_of,
        provider=official.provider,
        fetched_at=FETCHED_AT,
    )


def _entry(stream: str, payload: bytes | None, **fields: bytes) -> Entry:
    raw = {k.encode(): v for k, v in fields.items()}
    if payload is not None:
        raw[DATA_FIELD] = payload
    return Entry(stream=stream, entry_id="1700000000000-0", fields=raw)


def test_stream_and_index_names(streams: Streams, names: IndexNames) -> None:
    assert streams.articles == "t:articles"
    assert streams.quotes == "t:quotes"
    assert names.articles == "t-articles"
    assert names.quotes == "t-quotes"
    assert DATA_FIELD == b"__data__"


def test_article_entry_becomes_versioned_index_action(
    streams: Streams, names: IndexNames, article: ArticleEvent
) -> None:
    entry = _entry("t:articles", article.model_dump_json().encode())
    action = decode_entry(entry, streams, names)
    assert isinstance(action, BulkAction)
    assert action.index == "t-articles"
    assert action.doc_id == article.idempotency_key
    assert action.version == article.version
    assert action.version == int(FETCHED_AT.timestamp() * 1000)
    header, document = action.operations()
    source = json.loads(document)
    assert header == {
        "index": {
            "_index": "t-articles",
            "_id": article.idempotency_key,
            "version": article.version,
            "version_type": "external",
        }
    }
    assert source["title"] == "Damir Temirov: “Haqli g'alabaga erishdik”"
    assert source["title_suggest"] == {"input": [article.title]}
    assert source["canonical_url"] == article.canonical_url
    assert source["event_id"] == str(article.event_id)


def test_quote_entry_keeps_rate_as_exact_string(
    streams: Streams, names: IndexNames, quote: QuoteEvent
) -> None:
    entry = _entry("t:quotes", quote.model_dump_json().encode())
    action = decode_entry(entry, streams, names)
    assert isinstance(action, BulkAction)
    assert action.index == "t-quotes"
    assert action.doc_id == "KGS-USD-2023-09-27-cbr"
    assert action.version == quote.version
    header, document = action.operations()
    source = json.loads(document)
    assert header["index"]["version_type"] == "external"
    assert source["pair"] == "KGS/USD"
    assert isinstance(source["rate"], str)
    assert Decimal(source["rate"]) == quote.rate  # not a float: every digit survives
    assert len(Decimal(source["rate"]).as_tuple().digits) > 17  # more than a double holds
    assert source["rate_value"] == float(quote.rate)
    assert source["change_pct"] == "-0.0004"
    assert source["change_pct_value"] == -0.0004
    assert source["previous_rate"] == "0.0112771"


def test_quote_action_without_change(names: IndexNames) -> None:
    event = QuoteEvent(
        base="UZS",
        rate=Decimal("0.0000819"),
        as_of=date(2023, 9, 27),
        provider="cbr",
        fetched_at=FETCHED_AT,
    )
    _, document = quote_action(event, names.quotes).operations()
    source = json.loads(document)
    assert source["change_pct"] is None
    assert source["change_pct_value"] is None
    assert source["rate"] == "0.0000819"


def test_article_action_is_json_serialisable(article: ArticleEvent, names: IndexNames) -> None:
    action = article_action(article, names.articles)
    _, document = action.operations()
    round_tripped = json.loads(document)
    assert round_tripped["published_at"] == "2026-08-28T15:19:10Z"
    assert round_tripped["idempotency_key"] == article.idempotency_key


def test_missing_data_field(streams: Streams, names: IndexNames) -> None:
    result = decode_entry(_entry("t:articles", None, other=b"x", data=b"{}"), streams, names)
    assert isinstance(result, Invalid)
    assert result.error_class == "MissingDataField"
    assert "['data', 'other']" in result.message


@pytest.mark.parametrize("payload", [b"{not json", b"", b"\xff\xfe", b"[1, 2"])
def test_invalid_json(streams: Streams, names: IndexNames, payload: bytes) -> None:
    result = decode_entry(_entry("t:articles", payload), streams, names)
    assert isinstance(result, Invalid)
    assert result.error_class == "ValidationError"
    assert result.message.startswith("ArticleEvent:")


def test_json_missing_fields_names_them(streams: Streams, names: IndexNames) -> None:
    result = decode_entry(
        _entry("t:articles", b'{"source": "x", "url": "https://e.org"}'), streams, names
    )
    assert isinstance(result, Invalid)
    assert result.error_class == "ValidationError"
    for field in ("canonical_url", "title", "fetched_at", "content_hash"):
        assert f"{field}: Field required" in result.message
    assert "source:" not in result.message  # present fields are not blamed


def test_quote_with_bad_values_names_them(
    streams: Streams, names: IndexNames, quote: QuoteEvent
) -> None:
    data = json.loads(quote.model_dump_json())
    data["rate"] = "-1"
    data["base"] = "kgs"
    result = decode_entry(_entry("t:quotes", json.dumps(data).encode()), streams, names)
    assert isinstance(result, Invalid)
    assert result.message.startswith("QuoteEvent:")
    assert "rate:" in result.message
    assert "base:" in result.message


@pytest.mark.parametrize(
    ("field", "written"),
    [
        ("rate", 0.0021097946960549804754),  # a float by the time it is read: digits lost
        ("rate", "1_000"),  # a number to Python alone
        ("change_pct", "\u0663"),  # an Arabic-Indic three
        ("previous_rate", " 0.5"),
    ],
)
def test_a_decimal_is_read_only_as_the_contract_writes_it(
    streams: Streams, names: IndexNames, quote: QuoteEvent, field: str, written: object
) -> None:
    data = json.loads(quote.model_dump_json())
    data[field] = written
    result = decode_entry(_entry("t:quotes", json.dumps(data).encode()), streams, names)
    assert isinstance(result, Invalid)
    assert f'{field}: Value error, must be a decimal string such as "0.011560"' in result.message


@pytest.mark.parametrize("field", ["schema_version", "event_id", "occurred_at"])
def test_an_event_without_its_envelope_is_not_given_a_made_up_one(
    streams: Streams, names: IndexNames, quote: QuoteEvent, article: ArticleEvent, field: str
) -> None:
    for stream, event in (("t:quotes", quote), ("t:articles", article)):
        data = json.loads(event.model_dump_json())
        del data[field]
        result = decode_entry(_entry(stream, json.dumps(data).encode()), streams, names)
        assert isinstance(result, Invalid)
        assert f"{field}: Field required" in result.message


def test_article_on_the_quotes_stream_is_invalid(
    streams: Streams, names: IndexNames, article: ArticleEvent
) -> None:
    result = decode_entry(_entry("t:quotes", article.model_dump_json().encode()), streams, names)
    assert isinstance(result, Invalid)
    assert result.error_class == "ValidationError"


@pytest.mark.parametrize("stream", ["t:deadletters", "caravan:articles", "articles", "t:other"])
def test_unknown_stream(
    streams: Streams, names: IndexNames, article: ArticleEvent, stream: str
) -> None:
    result = decode_entry(_entry(stream, article.model_dump_json().encode()), streams, names)
    assert isinstance(result, Invalid)
    assert result.error_class == "UnknownStream"
    assert repr(stream) in result.message


def test_entry_key() -> None:
    assert _entry("t:articles", b"{}").key == "t:articles/1700000000000-0"


@pytest.mark.parametrize(
    "error",
    [
        RecursionError("maximum recursion depth exceeded"),
        MemoryError(),
        ValueError("bad"),
        KeyError("k"),
    ],
)
def test_an_analysis_that_raises_costs_its_entry_a_dead_letter_not_the_batch(
    streams: Streams,
    names: IndexNames,
    article: ArticleEvent,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    def analyse(text: str) -> str:
        if "poison" in text:
            raise error
        return stem_text(text)

    monkeypatch.setattr("shared.index.stem_text", analyse)
    poison = article.model_copy(update={"body": "a poison body"})
    results = [
        decode_entry(_entry("t:articles", a.model_dump_json().encode()), streams, names)
        for a in (article, poison, article)
    ]

    assert isinstance(results[0], BulkAction)
    assert isinstance(results[2], BulkAction)
    invalid = results[1]
    assert isinstance(invalid, Invalid)
    assert invalid.error_class  # pydantic's PydanticSerializationError, wrapping the error
    assert invalid.message.startswith("could not decode the entry: ")
    assert type(error).__name__ in invalid.message


def test_an_article_of_one_huge_word_decodes_with_no_tokens_for_it(
    streams: Streams,
    names: IndexNames,
    article: ArticleEvent,
) -> None:
    # Once an hour of folding in the indexer ("k…kh" lost one letter per pass).
    huge = article.model_copy(update={"body": "k" * 1_000_000 + "h", "summary": "zh" * 500_000})
    action = decode_entry(_entry("t:articles", huge.model_dump_json().encode()), streams, names)
    assert isinstance(action, BulkAction)
    source = json.loads(action.document)
    assert source["stem"]["body"] == source["fold"]["body"] == ""
    assert source["stem"]["summary"] == source["fold"]["summary"] == ""
    assert source["fold"]["title"] == fold_text(article.title) != ""


def _mixed_batch(article: ArticleEvent, quote: QuoteEvent) -> list[Entry]:
    data = json.loads(quote.model_dump_json())
    data["rate"] = "-1"
    return [
        _entry("t:articles", article.model_dump_json().encode()),
        _entry("t:articles", None, other=b"x"),
        _entry("t:articles", b"{not json"),
        _entry("t:articles", b'{"schema_version": 2, "title": "x"}'),
        _entry("t:quotes", quote.model_dump_json().encode()),
        _entry("t:quotes", json.dumps(data).encode()),
        _entry("t:other", article.model_dump_json().encode()),
        _entry(
            "t:articles",
            article.model_copy(update={"body": "", "summary": ""}).model_dump_json().encode(),
        ),
        _entry(
            "t:articles",
            article.model_copy(update={"title": "Ўзбекистон «банки»"}).model_dump_json().encode(),
        ),
        # The title reaches the batch's writer (orjson) as it is, in `title_suggest`:
        # every escape must come out as pydantic's core writes it. The rest of the event
        # (trace context, microseconds, an offset made UTC, no date) is written by
        # pydantic on both paths and must be joined to it unchanged.
        _entry(
            "t:articles",
            json.dumps(
                json.loads(article.model_dump_json())
                | {
                    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                    "tracestate": "vendor=1",
                    "fetched_at": "2026-09-01T17:00:00.000250+05:00",
                    "occurred_at": "0999-01-01T00:00:00.5Z",
                    "published_at": None,
                    "title": 'a "quote"\\ \u0000\u001f\u007f \u2028 tab\t 😀 </script> \ufeff',
                    "body": 'a "quote"\\ \u0000\u001f\u007f \u2028 tab\t 😀 </script>',
                    "authors": ["Ана", ""],
                    "language": None,
                }
            ).encode(),
        ),
    ]


def test_a_batch_decodes_each_entry_as_decode_entry_does(
    streams: Streams, names: IndexNames, article: ArticleEvent, quote: QuoteEvent
) -> None:
    entries = _mixed_batch(article, quote)
    together = decode_entries(entries, streams, names)
    alone = [decode_entry(entry, streams, names) for entry in entries]
    assert [type(r) for r in together] == [type(r) for r in alone]
    for mine, theirs in zip(together, alone, strict=True):
        if isinstance(mine, BulkAction):
            assert isinstance(theirs, BulkAction)
            assert mine.ndjson() == theirs.ndjson()
            assert mine.operations() == theirs.operations()
        else:
            assert mine == theirs
    assert decode_entries([], streams, names) == []


@pytest.mark.parametrize("error", [MemoryError(), ValueError("bad")])
def test_a_batch_whose_analysis_raises_decodes_its_entries_alone(
    streams: Streams,
    names: IndexNames,
    article: ArticleEvent,
    quote: QuoteEvent,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    analyse = analysis.analyse

    def poisoned(texts: list[str]) -> list[tuple[str, str]]:
        if any("poison" in text for text in texts):
            raise error
        return analyse(texts)

    monkeypatch.setattr(analysis, "analyse", poisoned)
    analysis.clear_caches()
    poison = article.model_copy(update={"body": "a poison body"})
    entries = [
        *_mixed_batch(article, quote),
        _entry("t:articles", poison.model_dump_json().encode()),
    ]
    together = decode_entries(entries, streams, names)
    alone = [decode_entry(entry, streams, names) for entry in entries]
    assert together[:-1] == alone[:-1]  # the same actions, the same reasons
    invalid = together[-1]
    assert isinstance(invalid, Invalid)
    assert invalid == alone[-1]
    assert type(error).__name__ in invalid.message


def test_the_schema_version_is_the_events_own_not_a_nested_one(
    article: ArticleEvent, streams: Streams, names: IndexNames
) -> None:
    # A search of the bytes found a nested "schema_version" first: a valid event was
    # dead-lettered as UnknownSchemaVersion.
    nested = b'{"meta": {"schema_version": 2}, ' + article.model_dump_json().encode()[1:]
    assert isinstance(decode_entry(_entry("t:articles", nested), streams, names), BulkAction)
    two = json.loads(article.model_dump_json()) | {"schema_version": 2}
    refused = decode_entry(_entry("t:articles", json.dumps(two).encode()), streams, names)
    assert refused == Invalid(
        "UnknownSchemaVersion",
        "schema_version 2 is not one this indexer reads (1); replay the dead letter after "
        "upgrading",
    )
    text = json.loads(article.model_dump_json()) | {"schema_version": "1"}
    wrong = decode_entry(_entry("t:articles", json.dumps(text).encode()), streams, names)
    assert isinstance(wrong, Invalid)
    assert wrong.error_class == "ValidationError"  # not "an unknown version 1"


MIB = 1 << 20


@pytest.mark.parametrize(
    ("payload", "error_class"),
    [
        # 16 MiB of "{}," parsed into 5.6 million objects and 940 MB.
        (b"[" + b"{}," * (16 * MIB // 3 - 1) + b"1]", "TooManyValues"),
        (b'{"tags": [' + b"1," * 200_000 + b"1]}", "TooManyValues"),
        (b"x" * (16 * MIB + 1), "TooLarge"),
    ],
)
def test_a_payload_is_refused_unparsed_past_its_bounds(
    streams: Streams, names: IndexNames, payload: bytes, error_class: str
) -> None:
    for stream in ("t:articles", "t:quotes"):
        result = decode_entry(_entry(stream, payload), streams, names)
        assert isinstance(result, Invalid)
        assert result.error_class == error_class
    (batched,) = decode_entries([_entry("t:articles", payload)], streams, names)
    assert batched == result


def test_commas_and_brackets_of_text_are_no_values(
    article: ArticleEvent, streams: Streams, names: IndexNames
) -> None:
    # A long article of punctuation, quotes and escapes is an article, indexed.
    text = 'Ташкент, "Самарканд", [Бухара] {Хива}\\ ' * 30_000
    long = article.model_copy(update={"body": text, "tags": [f"t{n}" for n in range(5000)]})
    payload = long.model_dump_json().encode()
    assert len(payload) > 1 * MIB
    action = decode_entry(_entry("t:articles", payload), streams, names)
    assert isinstance(action, BulkAction)


def test_a_list_of_wrong_items_is_one_error(streams: Streams, names: IndexNames) -> None:
    # A million of them were a million errors, a gigabyte and ten seconds to describe.
    payload = json.dumps({"tags": [1] * 50_000, "authors": [{}] * 9_000}).encode()
    result = decode_entry(_entry("t:articles", payload), streams, names)
    assert isinstance(result, Invalid)
    assert result.message.count("tags.") == 1
    assert result.message.count("authors.") == 1


def test_a_batch_of_long_texts_is_analysed_a_part_at_a_time(
    article: ArticleEvent, streams: Streams, names: IndexNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Analysed at once, twelve articles of 1.1 MB of distinct words took 790 MB.
    long = [
        article.model_copy(update={"url": f"https://a.example/{n}", "body": f"слово{n} " * 50_000})
        for n in range(6)
    ]
    entries = [_entry("t:articles", event.model_dump_json().encode()) for event in long]
    whole = [decode_entry(entry, streams, names) for entry in entries]
    calls: list[int] = []
    analyse = analysis.analyse

    def counted(texts: list[str]) -> list[tuple[str, str]]:
        calls.append(sum(map(len, texts)))
        return analyse(texts)

    monkeypatch.setattr(analysis, "analyse", counted)
    parts = decode_entries(entries, streams, names)
    assert len(calls) > 1
    assert all(chars <= decode.ANALYSE_CHARS for chars in calls)
    for mine, theirs in zip(parts, whole, strict=True):
        assert isinstance(mine, BulkAction)
        assert isinstance(theirs, BulkAction)
        assert mine.ndjson() == theirs.ndjson()


def test_an_entry_of_many_fields_and_no_payload_names_a_few(
    streams: Streams, names: IndexNames
) -> None:
    fields = {f"f{n:07d}": b"v" for n in range(100_000)}
    result = decode_entry(_entry("t:articles", None, **fields), streams, names)
    assert isinstance(result, Invalid)
    assert result.error_class == "MissingDataField"
    assert result.message.endswith("'f0000019'], 100000 in all)")
    assert len(result.message) < 500


def test_an_article_that_supersedes_a_key_deletes_it_and_stores_itself_alone(
    streams: Streams, names: IndexNames, article: ArticleEvent
) -> None:
    superseded = SupersededKey(key="a" * 32, version=1500)
    payload = article.model_copy(update={"supersedes": [superseded]}).model_dump_json()
    entry = _entry(streams.articles, payload.encode())
    batched, alone = decode_entries([entry], streams, names)[0], decode_entry(entry, streams, names)
    plain = decode_entry(
        _entry(streams.articles, article.model_dump_json().encode()), streams, names
    )
    for action in (batched, alone):
        assert isinstance(action, BulkAction)
        assert action.supersedes == (("a" * 32, 1500),)
        # The document is the article's, as without the field: no document is about others.
        assert isinstance(plain, BulkAction)
        assert action.operations() == plain.operations()
    assert isinstance(batched, BulkAction)
    assert isinstance(alone, BulkAction)
    assert batched.ndjson() == alone.ndjson()


@pytest.mark.parametrize(
    "keys",
    [
        [{"key": "not a key", "version": 1}],
        [{"key": "a" * 32, "version": 1}] * 5,
        [{"key": "a" * 32}],  # which version is not known: nothing may go
        ["a" * 32],
        # Past Elasticsearch's last external version, or not a number as written.
        [{"key": "a" * 32, "version": 2**63 - 1}],
        [{"key": "a" * 32, "version": True}],
        [{"key": "a" * 32, "version": "42"}],
    ],
)
def test_superseded_keys_are_validated_as_keys(
    streams: Streams, names: IndexNames, article: ArticleEvent, keys: list[object]
) -> None:
    payload = json.loads(article.model_dump_json()) | {"supersedes": keys}
    refused = decode_entry(_entry(streams.articles, json.dumps(payload).encode()), streams, names)
    assert isinstance(refused, Invalid)
    assert "supersedes" in refused.message
