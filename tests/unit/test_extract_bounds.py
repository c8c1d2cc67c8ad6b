"""One extraction's memory is bounded: a page is cut to MAX_HTML_CHARS, scripts first."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lxml.html import HtmlElement, tostring
from trafilatura.utils import load_html

from services.ingest.extract import MAX_HTML_CHARS, bounded_html, extract_article, parse_page
from tests.conftest import REPO

ARTICLE = "".join(
    f"<p>Paragraph {n} of the article tells what happened in the valley.</p>" for n in range(20)
)
JSON_LD = '<script type="application/ld+json">{"@type": "NewsArticle"}</script>'


def _page(filler_bytes: int, *, script_first: bool = False) -> str:
    # Long blocks: a large page, but few elements for the extractor to walk.
    block = f"<div>{'teaser words ' * 400}</div>"
    filler = block * (filler_bytes // len(block))
    script = f"<script>var data = '{'x' * filler_bytes}';</script>"
    head = f"<head><title>Valley</title>{JSON_LD}{script if script_first else ''}</head>"
    return f"<html>{head}<body><article><h1>Valley</h1>{ARTICLE}</article>{filler}</body></html>"


def test_a_small_page_is_parsed_whole() -> None:
    page = _page(1000)
    assert bounded_html(page) == page


def test_a_large_page_loses_its_scripts_before_being_cut() -> None:
    page = _page(2 * MAX_HTML_CHARS, script_first=True)
    bounded = bounded_html(page)
    assert len(bounded) <= MAX_HTML_CHARS
    assert JSON_LD in bounded
    assert ARTICLE in bounded
    assert "var data" not in bounded


def test_the_article_of_a_multi_megabyte_page_is_extracted() -> None:
    extracted = extract_article(_page(3 * MAX_HTML_CHARS), "https://site.example/valley")
    assert extracted is not None
    assert "Paragraph 19 of the article" in extracted.text
    assert "teaser" not in extracted.text


@pytest.mark.parametrize(
    "html",
    [
        _page(1000),
        '<?xml version="1.0" encoding="utf-8"?><html><body><p>caf\u00e9</p></body></html>',
        "<html/>",
        "<div>a</div><div>b</div>",
        "<html><body><form><input name='q'><select><option>x</select></form></body></html>",
        "just text",
        "<p>one block</p>",
        "\x00\x01",
    ],
)
def test_the_page_is_parsed_as_trafilatura_parses_it(html: str) -> None:
    tree, theirs = parse_page(html), load_html(html)
    if theirs is None:
        assert tree is None
        return
    assert tree is not None
    assert tostring(tree) == tostring(theirs)
    # One element class for all, forms and inputs included (picked without Python).
    assert {type(element) for element in tree.iter()} == {HtmlElement}


# The peak is the process's own (VmHWM): ru_maxrss would start at the peak of the pytest
# process that forked it, which the tests run before decide.
_PEAK = """
import sys
from services.ingest.extract import extract_article
from tests.unit.test_extract_bounds import _page
def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
page = _page(int(sys.argv[1]))
before = peak()
assert extract_article(page, "https://site.example/valley") is not None
print(peak() - before)
"""


def _peak_kib(filler_bytes: int) -> int:
    """The growth of peak memory while extracting a page, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(filler_bytes)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_memory_does_not_grow_with_the_page_beyond_the_cap() -> None:
    at_cap = _peak_kib(MAX_HTML_CHARS)
    ten_times = _peak_kib(10 * MAX_HTML_CHARS)
    # Parsed whole, the larger page's trees take about ten times as much (~100 MB).
    assert ten_times < at_cap + 20 * 1024
