"""The page's languages: Accept-Language negotiation, the message catalogs, and dates,
numbers and plurals in each language."""

from __future__ import annotations

from datetime import date

import pytest
from babel import Locale
from markupsafe import Markup

from services.query.languages import (
    BABEL_LOCALES,
    CATALOGS,
    LANGUAGES,
    MESSAGES,
    Language,
    accepted_ranges,
    choose,
    content_language,
    load_catalog,
    negotiate,
)

# CLDR's narrow no-break space, as Babel writes it in dates.
NNBSP = "\u202f"
NBSP = "\xa0"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("ru", "ru"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-US,en;q=0.9,ru;q=0.8", "en"),
        ("kk-KZ", "kk"),
        ("uz", "uz-Latn"),  # Uzbek alone: the Latin script, the official one
        ("uz-UZ", "uz-Latn"),
        ("uz-Latn-UZ", "uz-Latn"),
        ("uz-Cyrl", "uz-Cyrl"),
        ("UZ-cyrl-uz", "uz-Cyrl"),
        ("de-DE, ru;q=0.5, kk;q=0.8", "kk"),  # the best q the page speaks, not the first
        ("ru;q=0.8, kk;q=0.8", "ru"),  # equals: in the order given
        ("ru;q=0.3, kk", "kk"),  # no q is q=1
        ("fr, de", "en"),  # none the page speaks
        ("fr, *;q=0.1", "en"),
        ("en;q=0, *", "ru"),  # `*` is any language not refused
        ("ru;q=0, kk;q=0.1", "kk"),
        ("uz;q=0, uz-Cyrl, ru;q=0.1", "ru"),  # `uz` refuses both Uzbek scripts
        ("ru;q=1.5, kk;q=0.2", "kk"),  # q above 1: malformed, left out
        ("ru;q=abc, kk;q=0.2", "kk"),
        ("ru;;q=0.5, kk;q=0.2", "kk"),
        ("1ru, kk;q=0.2", "kk"),
        (" ru ; q = 0.5 , kk;q=0.2", "ru"),
    ],
)
def test_negotiation(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_accepted_ranges_are_best_first_and_leave_malformed_out() -> None:
    assert accepted_ranges("ru;q=0.5,en-GB,x y,kk;q=0.500,uz;q=1.0") == [
        ("en-gb", 1.0),
        ("uz", 1.0),
        ("ru", 0.5),
        ("kk", 0.5),
    ]


def test_a_header_of_thousands_of_ranges_is_read_by_its_first_ones() -> None:
    # A 60 KB header of commas cost a page 128 ms, read twice.
    assert accepted_ranges("," * 60_000 + "kk") == []
    assert accepted_ranges("x," * 31 + "kk," + "," * 60_000) == [("x", 1.0)] * 31 + [("kk", 1.0)]
    assert negotiate("x," * 40 + "kk") == "en"


def test_a_tag_of_thousands_of_subtags_is_read_by_its_first_ones() -> None:
    # Joined again per subtag dropped, a 64 KB header took seconds of the event loop.
    tail = "-".join(["a"] * 30_000)
    assert negotiate(f"uz-Cyrl-{tail}") == "uz-Cyrl"
    assert negotiate(f"xx-{tail}, kk;q=0.5") == "kk"
    assert choose(f"ru-{tail}", None) == Language("ru", chosen=True)


def test_the_address_wins_over_accept_language_and_is_carried_on() -> None:
    assert choose("ru", "kk") == Language("ru", chosen=True)
    assert choose("uz", None) == Language("uz-Latn", chosen=True)
    assert choose("UZ-CYRL", None) == Language("uz-Cyrl", chosen=True)
    # One the page does not speak is as if not asked for.
    assert choose("fr", "kk") == Language("kk")
    assert choose(None, "kk").carried is None
    assert Language("kk", chosen=True).url("/articles/ab") == "/articles/ab?lang=kk"
    assert Language("kk").url("/") == "/"
    assert [Language(tag).formats for tag in LANGUAGES] == [
        "en-GB",
        "ru",
        "uz-Latn",
        "uz-Cyrl",
        "kk",
    ]


def test_every_catalog_has_every_key_and_no_other() -> None:
    assert sorted(path.stem for path in MESSAGES.glob("*.toml")) == sorted(LANGUAGES)
    english = set(load_catalog("en"))
    for tag in LANGUAGES:
        keys = set(CATALOGS[tag])
        assert keys - english == set(), f"{tag}: keys English has not"
        assert english - keys == set(), f"{tag}: keys missing"


def test_plural_messages_have_the_languages_categories_and_the_same_fields() -> None:
    for tag in LANGUAGES:
        categories = {*Locale.parse(BABEL_LOCALES[tag]).plural_form.tags, "other"}
        for key, message in CATALOGS[tag].items():
            english = CATALOGS["en"][key]
            assert isinstance(message, dict) == isinstance(english, dict), f"{tag}: {key}"
            forms = list(message.values()) if isinstance(message, dict) else [message]
            if isinstance(message, dict):
                assert set(message) == categories, f"{tag}: {key}"
            first = forms[0] if not isinstance(english, dict) else next(iter(english.values()))
            for form in forms:
                assert _fields(form) == _fields(first), f"{tag}: {key}"


def _fields(message: str) -> set[str]:
    return {part.split("}")[0] for part in message.split("{")[1:]}


@pytest.mark.parametrize(
    ("total", "shown"),
    [
        (1, "Показаны 1–1, всего 1 результат"),
        (2, "Показаны 1–2, всего 2 результата"),
        (5, "Показаны 1–5, всего 5 результатов"),
        (11, "Показаны 1–10, всего 11 результатов"),
        (21, "Показаны 1–10, всего 21 результат"),
        (22, "Показаны 1–10, всего 22 результата"),
        (0, "Показаны 0–0, всего 0 результатов"),
        (12345, f"Показаны 1–10, всего 12{NBSP}345 результатов"),
    ],
)
def test_russian_viewing_line_has_the_right_plural(total: int, shown: str) -> None:
    russian = Language("ru")
    last = min(total, 10)
    line = russian.text(
        "viewing",
        count=total,
        first=russian.number(min(total, 1)),
        last=russian.number(last),
        total=russian.number(total),
    )
    assert line == shown


def test_english_viewing_line_is_the_seed_pages() -> None:
    line = Language().text("viewing", count=9, first="1", last="6", total="9")
    assert line == "Viewing results 1 - 6 of 9"


def test_a_plural_message_needs_its_count() -> None:
    with pytest.raises(TypeError, match="count"):
        Language().text("viewing", first="1", last="6", total="9")


def test_messages_escape_their_values_unless_markup() -> None:
    english = Language()
    assert english.text("read_original", source="<b>") == "Read the original at &lt;b&gt;"
    link = Markup('<a href="/?q=gaz">gaz</a>')
    assert english.text("did_you_mean", suggestion=link) == f"Did you mean {link}?"


@pytest.mark.parametrize(
    ("tag", "long", "month", "number", "ticker"),
    [
        ("en", "29 March 2025", "March 2025", "12,345", "KGS/USD = 0.01156 -0%"),
        (
            "ru",
            f"29 марта 2025{NNBSP}г.",
            f"март 2025{NNBSP}г.",
            f"12{NBSP}345",
            "KGS/USD = 0,01156 -0%",
        ),
        ("uz-Latn", "29-mart, 2025", "mart, 2025", f"12{NBSP}345", "KGS/USD = 0,01156 -0%"),
        ("uz-Cyrl", "29 март, 2025", "март, 2025", f"12{NBSP}345", "KGS/USD = 0,01156 -0%"),
        (
            "kk",
            f"2025{NNBSP}ж. 29 наурыз",
            f"2025{NNBSP}ж. наурыз",
            f"12{NBSP}345",
            "KGS/USD = 0,01156 -0%",
        ),
    ],
)
def test_dates_and_numbers_in_each_language(
    tag: str, long: str, month: str, number: str, ticker: str
) -> None:
    language = Language(tag)
    assert language.long_date("2025-03-29T08:00:00Z") == long
    assert language.long_date(date(2025, 3, 29)) == language.long_date("2025-03-29")
    assert language.long_date(None) == ""
    assert language.month(date(2025, 3, 1)) == month
    assert language.number(12345) == number
    assert language.ticker("KGS/USD = 0.01156 -0%") == ticker


def test_english_dates_are_the_seed_pages() -> None:
    assert Language().long_date(date(2025, 3, 9)) == "9 March 2025"


@pytest.mark.parametrize(
    ("value", "attribute"),
    [
        ("ru", "ru"),
        ("uz-Cyrl", "uz-Cyrl"),
        ("en-GB", "en-GB"),
        (None, None),
        ("", None),
        ("русский", None),
        ("r", None),
        ('ru" onmouseover="x', None),
    ],
)
def test_an_articles_language_becomes_a_lang_attribute_only_when_a_tag(
    value: str | None, attribute: str | None
) -> None:
    assert content_language(value) == attribute
