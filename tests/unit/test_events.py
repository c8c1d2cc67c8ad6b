"""Event contracts: keys, UTC datetimes, exact decimals, bytes, tolerant reading."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.events import (
    EVENT_MODELS,
    ArticleEvent,
    DeadLetter,
    QuoteEvent,
    SavedSearchMatch,
    article_key,
    content_hash,
    is_http_url,
)

FETCHED_AT = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def _article(**overrides: Any) -> ArticleEvent:
    fields: dict[str, Any] = {
        "source": "andijonfk.uz",
        "url": "https://andijonfk.uz/sayt/bugun-bobur-arenada-andijon-horazm?utm_source=tg",
        "canonical_url": "https://andijonfk.uz/sayt/bugun-bobur-arenada-andijon-horazm",
        "title": "Bugun Bobur Arenada: Andijon — Xorazm",
        "fetched_at": FETCHED_AT,
        "content_hash": content_hash("Bugun Bobur Arenada: Andijon — Xorazm", ""),
    }
    fields.update(overrides)
    return ArticleEvent(**fields)


def _quote(**overrides: Any) -> QuoteEvent:
    fields: dict[str, Any] = {
        "base": "KGS",
        "rate": Decimal("0.01127266"),
        "as_of": date(2023, 9, 27),
        "provider": "cbr",
        "fetched_at": FETCHED_AT,
    }
    fields.update(overrides)
    return QuoteEvent(**fields)


def test_idempotency_key_is_deterministic_per_canonical_url() -> None:
    first = _article()
    again = _article(url="https://andijonfk.uz/other-link", fetched_at=FETCHED_AT + timedelta(1))
    other = _article(canonical_url="https://andijonfk.uz/sayt/another")
    assert first.idempotency_key == again.idempotency_key
    assert first.idempotency_key == article_key(first.canonical_url)
    assert first.idempotency_key != other.idempotency_key
    assert len(first.idempotency_key) == 32
    assert all(c in "0123456789abcdef" for c in first.idempotency_key)


def test_every_event_gets_its_own_event_id() -> None:
    first, second = _article(), _article()
    assert first.idempotency_key == second.idempotency_key
    assert first.event_id != second.event_id


def test_version_follows_fetch_time_in_milliseconds() -> None:
    early = _article()
    later = _article(fetched_at=FETCHED_AT + timedelta(milliseconds=5))
    assert early.version == int(FETCHED_AT.timestamp()) * 1000
    assert later.version == early.version + 5


def test_schema_version_is_1_and_other_versions_are_rejected() -> None:
    assert _article().schema_version == 1
    assert _quote().schema_version == 1
    data = json.loads(_article().model_dump_json())
    data["schema_version"] = 2
    with pytest.raises(ValidationError, match="schema_version"):
        ArticleEvent.model_validate(data)


@pytest.mark.parametrize("field", ["fetched_at", "published_at", "occurred_at"])
def test_naive_datetimes_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _article(**{field: datetime(2026, 9, 1, 12, 0)})


def test_aware_datetimes_are_converted_to_utc() -> None:
    tashkent = timezone(timedelta(hours=5))
    event = _article(
        published_at=datetime(2026, 8, 28, 20, 19, 10, tzinfo=tashkent),
        fetched_at=datetime(2026, 9, 1, 17, 0, tzinfo=tashkent),
    )
    assert event.published_at == datetime(2026, 8, 28, 15, 19, 10, tzinfo=UTC)
    assert event.published_at is not None
    assert event.published_at.tzinfo is UTC
    assert event.fetched_at.tzinfo is UTC
    assert event.fetched_at.hour == 12
    assert '"published_at":"2026-08-28T15:19:10Z"' in event.model_dump_json()


@pytest.mark.parametrize("field", ["fetched_at", "published_at", "occurred_at"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-00:01"])
def test_a_moment_beyond_utcs_range_of_dates_names_its_field(field: str, moment: str) -> None:
    # It raised an OverflowError: a dead letter "date value out of range", naming no field.
    with pytest.raises(ValidationError, match=rf"{field}\n.*outside the range of dates"):
        ArticleEvent.model_validate({**_article().model_dump(), field: moment})


@pytest.mark.parametrize("make", [_article, _quote])
def test_a_version_observed_later_than_an_hour_from_now_is_refused(
    make: Any,
) -> None:
    # Its version would outrank every real update of the document until then (one dated
    # 9999 for good), each acknowledged as stale without a word.
    for ahead in (timedelta(hours=1, minutes=1), timedelta(days=365 * 7000)):
        with pytest.raises(ValidationError, match=r"fetched_at\n.*ahead of this clock"):
            make(fetched_at=datetime.now(UTC) + ahead)
    # A producer's clock a little ahead of the reader's is no reason to refuse.
    assert make(fetched_at=datetime.now(UTC) + timedelta(minutes=59)).version


@pytest.mark.parametrize("make", [_article, _quote])
def test_a_version_observed_before_1970_is_refused(make: Any) -> None:
    # Its version would be negative: Elasticsearch refused the whole bulk it came in.
    with pytest.raises(ValidationError, match=r"fetched_at\n.*before 1970"):
        make(fetched_at=datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    assert make(fetched_at=datetime(1970, 1, 1, tzinfo=UTC)).version == 0


def test_decimals_are_written_as_plain_digits_never_an_exponent() -> None:
    # 1/126,500 som in USD, and a rate made of the integer 200: str() gave `7.9…E-7` and
    # `2.0E+2`, which decimal types outside Python refuse.
    quote = _quote(
        rate=Decimal(1) / Decimal(1265000),
        previous_rate=Decimal("2.0E+2"),
        change_pct=Decimal("-9.99E-8"),
    )
    written = json.loads(quote.model_dump_json())
    assert written["rate"] == "0.0000007905138339920948616600790514"
    assert (written["previous_rate"], written["change_pct"]) == ("200", "-0.0000000999")
    again = QuoteEvent.model_validate_json(quote.model_dump_json())
    assert (again.rate, again.previous_rate, again.change_pct) == (
        quote.rate,
        quote.previous_rate,
        quote.change_pct,
    )


def test_a_decimal_of_absurd_places_is_refused_not_written_out() -> None:
    # Within a change's bounds, and written out in full a 50 MB document (review).
    with pytest.raises(ValidationError, match="more than 60 decimal places"):
        _quote(change_pct="1E-50000000")
    assert json.loads(_quote(change_pct="0E-999999").model_dump_json())["change_pct"] == "0"


def test_iso_strings_with_offsets_are_converted_too() -> None:
    data = json.loads(_article().model_dump_json())
    data["published_at"] = "2016-02-01T17:22:00+01:00"
    event = ArticleEvent.model_validate(data)
    assert event.published_at == datetime(2016, 2, 1, 16, 22, tzinfo=UTC)
    assert event.published_at is not None
    assert event.published_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("field", ["source", "url", "canonical_url", "title"])
def test_required_text_must_not_be_blank(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _article(**{field: "   "})


def test_content_hash_must_be_a_sha256_hex_digest() -> None:
    with pytest.raises(ValidationError, match="content_hash"):
        _article(content_hash="not-a-hash")
    assert content_hash("t", "b") == content_hash("t", "b")
    assert content_hash("t", "b") != content_hash("t", "b changed")
    assert content_hash("t", "b") != content_hash("t changed", "b")
    assert len(content_hash("t", "b")) == 64


def test_quote_rate_is_an_exact_decimal_string_in_json() -> None:
    rate = Decimal("10.8486") / Decimal("10") / Decimal("96.2378")
    event = _quote(rate=rate, change_pct=Decimal("0.3300"))
    data = json.loads(event.model_dump_json())
    assert isinstance(data["rate"], str)
    assert Decimal(data["rate"]) == rate
    assert data["change_pct"] == "0.3300"  # trailing zeros kept: the string is the value
    assert QuoteEvent.model_validate_json(event.model_dump_json()).rate == rate


@pytest.mark.parametrize("rate", [Decimal("0"), Decimal("-0.01"), Decimal("NaN")])
def test_non_positive_rate_is_rejected(rate: Decimal) -> None:
    with pytest.raises(ValidationError, match="rate"):
        _quote(rate=rate)


def test_non_positive_previous_rate_is_rejected() -> None:
    with pytest.raises(ValidationError, match="previous_rate"):
        _quote(previous_rate=Decimal("0"))


@pytest.mark.parametrize("base", ["kgs", "KG", "KGSS", "K1S", "KGS\n", " KGS", "КГС"])
def test_base_must_be_three_upper_case_letters(base: str) -> None:
    with pytest.raises(ValidationError, match="base"):
        _quote(base=base)


def test_quote_is_always_against_usd() -> None:
    assert _quote().quote == "USD"
    with pytest.raises(ValidationError, match="quote"):
        _quote(quote="EUR")


def test_quote_idempotency_key() -> None:
    assert _quote().idempotency_key == "KGS-USD-2023-09-27-cbr"
    assert _quote(fetched_at=FETCHED_AT + timedelta(hours=1)).idempotency_key == (
        "KGS-USD-2023-09-27-cbr"
    )


def _dead_letter(**overrides: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "stream": "caravan:articles",
        "entry_id": "1700000000000-0",
        "payload": b"\xff\x00{not json",
        "other_fields": {"junk": b"\x00\x01\xfe"},
        "error_class": "ValidationError",
        "error_message": "ArticleEvent: invalid JSON",
        "service": "indexer",
        "attempts": 5,
    }
    fields.update(overrides)
    return DeadLetter(**fields)


def test_dead_letter_bytes_survive_a_json_round_trip() -> None:
    letter = _dead_letter()
    text = letter.model_dump_json()
    json.loads(text)  # it is valid JSON, bytes and all
    back = DeadLetter.model_validate_json(text)
    assert back.payload == b"\xff\x00{not json"
    assert back.other_fields == {"junk": b"\x00\x01\xfe"}
    assert back == letter
    assert back.idempotency_key == "caravan:articles/1700000000000-0"


def test_dead_letter_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValidationError, match="attempts"):
        _dead_letter(attempts=0)


@pytest.mark.parametrize("model", [ArticleEvent, QuoteEvent, DeadLetter])
def test_unknown_fields_are_ignored(model: type[ArticleEvent | QuoteEvent | DeadLetter]) -> None:
    sample = {ArticleEvent: _article, QuoteEvent: _quote, DeadLetter: _dead_letter}[model]()
    data = json.loads(sample.model_dump_json())
    data["added_in_a_later_producer"] = {"nested": [1, 2]}
    back = model.model_validate(data)
    assert back == sample
    assert "added_in_a_later_producer" not in back.model_dump()


def test_computed_fields_in_json_are_ignored_on_read() -> None:
    data = json.loads(_article().model_dump_json())
    data["idempotency_key"] = "forged"
    data["version"] = 1
    back = ArticleEvent.model_validate(data)
    assert back.idempotency_key == article_key(back.canonical_url)
    assert back.version == int(FETCHED_AT.timestamp() * 1000)


def test_events_are_frozen() -> None:
    event = _article()
    with pytest.raises(ValidationError):
        event.title = "changed"  # type: ignore[misc]


def test_event_models_registry() -> None:
    expected = {
        "ArticleEvent": ArticleEvent,
        "QuoteEvent": QuoteEvent,
        "DeadLetter": DeadLetter,
        "SavedSearchMatch": SavedSearchMatch,
    }
    assert expected == EVENT_MODELS


def _match(**overrides: Any) -> SavedSearchMatch:
    article = _article()
    fields: dict[str, Any] = {
        "saved_search_id": "Qm3v8Zr1Xc0LwT5yHn2KpA",
        "article_id": article.idempotency_key,
        "url": article.url,
        "title": article.title,
        "source": article.source,
        "fetched_at": article.fetched_at,
        "content_hash": article.content_hash,
    }
    return SavedSearchMatch(**(fields | overrides))


def test_a_match_is_one_per_saved_search_article_and_text() -> None:
    match = _match()
    other_text = _match(content_hash=content_hash("Bugun Bobur Arenada", "yangi matn"))
    refetched = _match(fetched_at=FETCHED_AT + timedelta(hours=1))

    assert match.idempotency_key == (
        f"Qm3v8Zr1Xc0LwT5yHn2KpA/{_article().idempotency_key}/{_article().content_hash}"
    )
    assert other_text.idempotency_key != match.idempotency_key
    assert refetched.idempotency_key == match.idempotency_key
    assert refetched.version > match.version == _article().version
    wire = json.loads(match.model_dump_json())
    assert wire["matched_at"].endswith("Z")
    assert wire["published_at"] is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"article_id": "not-an-article-id"},
        {"url": "javascript:alert(1)"},
        {"content_hash": "abc"},
        {"saved_search_id": " "},
        {"title": ""},
    ],
)
def test_a_match_refuses_what_no_article_has(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _match(**overrides)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://example.org/a",
        "vbscript:msgbox",
        "//example.org/a",
        "/sayt/a",
        "http:/example.org",
        "https://",
        "http:///example.org",
        "https:// example.org",
        "mailto:a@example.org",
    ],
)
@pytest.mark.parametrize("field", ["url", "canonical_url"])
def test_article_urls_must_be_http_or_https(field: str, url: str) -> None:
    with pytest.raises(ValidationError, match=r"not an http\(s\) URL"):
        _article(**{field: url})


def test_http_urls_of_any_case_are_articles() -> None:
    article = _article(url=" HTTPS://Andijonfk.uz/a ", canonical_url="http://[2001:db8::1]/a")
    assert article.url == "HTTPS://Andijonfk.uz/a"


@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            "".join,
            st.lists(
                st.sampled_from(
                    # ſ (long s): a case-blind match of "s" that no URL parser reads so.
                    ["h", "t", "p", "s", "H", "ſ", ":", "/", " ", "\t", "java", "script", "x"]
                ),
                max_size=12,
            ),
        ),
    )
)
@example("httpſ://news.example/a")
def test_only_text_that_opens_with_an_http_scheme_and_a_host_is_an_http_url(text: str) -> None:
    if is_http_url(text):
        scheme, rest = text.split("://", 1)
        assert scheme.lower() in ("http", "https")
        assert rest[0] not in " \t\n\r/?#"


@pytest.mark.parametrize(
    ("field", "value", "bound"),
    [
        ("rate", "1E+999999", "rate must be between 1E-9 and 1E+9"),
        ("rate", "1E-999999", "rate must be between 1E-9 and 1E+9"),
        ("rate", "1" * 5000, "rate must be between 1E-9 and 1E+9"),
        ("change_pct", "1E+999999", "change in percent must be between -1E+21 and 1E+21"),
        ("change_pct", "-1E+22", "change in percent must be between -1E+21 and 1E+21"),
        # The rate it changed from is a rate too: 1E+999999999 was indexed as it came.
        ("previous_rate", "1E+999999999", "rate must be between 1E-9 and 1E+9"),
    ],
)
def test_quotes_outside_the_sane_bounds_are_refused(field: str, value: str, bound: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(bound)):
        _quote(**{field: Decimal(value)})
    data = json.loads(_quote().model_dump_json()) | {field: value}
    with pytest.raises(ValidationError, match=re.escape(bound)):
        QuoteEvent.model_validate_json(json.dumps(data))
