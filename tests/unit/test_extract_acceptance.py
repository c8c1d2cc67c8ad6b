"""When a first extraction may be taken as the article, and when a fallback's text replaces it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml.etree import strip_elements
from trafilatura import bare_extraction
from trafilatura.utils import load_html

from services.ingest.acceptance import (
    FALLBACK_BELOW_CHARS,
    SHARE_PAGE_MAX_CHARS,
    is_boilerplate,
    needs_fallback,
    replaces,
    substance,
)
from services.ingest.extract import (
    _CLEANED,
    _TEXT_OPTIONS,
    _needs_fallback,
    extract_article,
    without_code,
)

REPRINT = (
    "This copy is for your personal, non-commercial use only. To order presentation-ready "
    "copies for distribution to your colleagues, clients or customers visit "
    "https://reprints.example."
)
ADDRESS = "https://news.example/articles/regional-lender-trims-forecast-51574168486"
PROSE = (
    "The council met on Tuesday to vote on the new bridge over the river, after a year of "
    "debate about its cost and where it should stand. "
)
# An article of about 2,400 characters whose body sits in a block trafilatura's
# precision rules prune, beside a print header with a reprint notice.
FIXTURE = Path(__file__).parents[1] / "data" / "extraction" / "reprint-notice.html"
FIXTURE_URL = "https://www.ledger.example/articles/regional-lender-trims-forecast-51574168486"


@pytest.mark.parametrize(
    "paragraph",
    [
        REPRINT,
        ADDRESS,
        f"Source: {ADDRESS}",
        "© 2019 Example Media. All Rights Reserved.",
        "Copyright 2024 Example Media",
        "We use cookies to give you the best experience. See our cookie policy.",
        "Этот сайт использует файлы cookie.",
        "Already a subscriber? Log in to continue reading.",
        "Sign up for our newsletter",
        "For the best experience, please update to a modern browser.",
        "Все права защищены.",
    ],
)
def test_notices_and_addresses_are_boilerplate(paragraph: str) -> None:
    assert is_boilerplate(paragraph)


@pytest.mark.parametrize(
    "paragraph",
    [
        "",
        PROSE,
        "Read the full report at https://stats.example/report, which the ministry published "
        "on Monday after months of delay.",
        # A long paragraph about cookies is an article about them.
        "We use cookies, the regulator said, is no longer enough: " + PROSE * 3,
        "The copyright office rejected the claim.",
    ],
)
def test_prose_is_not_boilerplate(paragraph: str) -> None:
    assert not is_boilerplate(paragraph)


def test_substance_counts_only_paragraphs_that_are_not_boilerplate() -> None:
    assert substance(f"{REPRINT}\n{ADDRESS}") == 0
    assert substance(f"{REPRINT}\n{PROSE}\n\n{ADDRESS}") == len(PROSE)


def test_a_short_result_needs_the_fallback() -> None:
    assert needs_fallback(PROSE, page_chars=len(PROSE))
    assert not needs_fallback(PROSE * 5, page_chars=len(PROSE) * 5)


def test_a_result_made_of_boilerplate_needs_the_fallback_however_long() -> None:
    notices = "\n".join([REPRINT, ADDRESS] * 3)
    assert len(notices) >= FALLBACK_BELOW_CHARS
    assert needs_fallback(notices, page_chars=len(notices))


def test_a_result_short_for_its_page_needs_the_fallback() -> None:
    text = PROSE * 5
    assert not needs_fallback(text, page_chars=len(text) * 9)
    assert needs_fallback(text, page_chars=len(text) * 11)
    # Not on a page with more text than article pages have: its teasers would win.
    assert not needs_fallback(text, page_chars=SHARE_PAGE_MAX_CHARS + 1)


@pytest.mark.parametrize("spaces", [1, 3, 30])
@pytest.mark.parametrize("pages", [5, 9, 11, 200, 3000])
def test_the_page_is_measured_single_spaced(spaces: int, pages: int) -> None:
    text = PROSE * 5
    page = (" " * spaces).join((text * pages).split(" "))
    counted = len(" ".join(page.split()))
    assert _needs_fallback(text, page) == needs_fallback(text, page_chars=counted)


def test_a_fallback_replaces_a_result_with_more_article() -> None:
    assert replaces(PROSE, REPRINT, looser=False)  # any article beats none
    assert replaces(PROSE * 3, PROSE * 2, looser=False)
    assert not replaces(f"{PROSE}\n{REPRINT}\n{ADDRESS}", PROSE, looser=False)


def test_a_looser_fallback_replaces_a_result_only_with_several_times_its_article() -> None:
    assert replaces(PROSE, REPRINT, looser=True)
    assert replaces(PROSE * 5, PROSE * 2, looser=True)
    # A first pass that found the article: the looser mode adds its surroundings.
    assert not replaces(PROSE * 3, PROSE * 2, looser=True)


def _first_pass(html: str) -> str:
    tree = load_html(html)
    assert tree is not None
    without_code(tree)
    strip_elements(tree, *_CLEANED, with_tail=False)
    document: Any = bare_extraction(tree, url=FIXTURE_URL, fast=True, **_TEXT_OPTIONS)
    return str(document.text)


def test_the_reprint_notice_alone_is_never_the_article() -> None:
    html = FIXTURE.read_text(encoding="utf-8")
    # The failure the fixture reproduces: precision mode prunes the body's block
    # and keeps the print header's notice and address as the whole text.
    assert substance(_first_pass(html)) == 0
    extracted = extract_article(html, FIXTURE_URL)
    assert extracted is not None
    assert extracted.path == "trafilatura-default+fallback"
    for sentence in (
        "Shares of the region's largest savings bank slipped in early trading on Tuesday",
        "Deposits grew faster than loans for the third quarter in a row",
        "fuller picture of its plans for the new branches then.",
    ):
        assert sentence in extracted.text
