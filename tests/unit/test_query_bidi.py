"""A title, source, author or excerpt holding bidirectional controls reorders only
itself on the pages: each is isolated (an element with `dir`, or a <bdi>), and the
source, date and authors beside it stay outside."""

from __future__ import annotations

import pytest
from lxml import html

from tests.querynode import Node, article, query_over

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: what follows it, to the paragraph's end, reversed
SHOWN, OTHER = "a" * 32, "b" * 32
TITLE = f"{RLO}Caravan crosses the steppe"
SOURCE = f"news{RLO}.example"
AUTHORS = [f"{RLO}Ann", "Bob"]
EXCERPT = f"{RLO}A caravan crossed the steppe."


def _isolating(element: html.HtmlElement) -> str:
    """The whole text of the nearest element at or above `element` that isolates what it
    holds (a <bdi>, or an element with `dir`); '' when none does."""
    for above in (element, *element.iterancestors()):
        if above.tag == "bdi" or "dir" in above.attrib:
            return str(above.text_content())
    return ""


def _isolated(page: str, text: str) -> list[str]:
    """What isolates `text` wherever the page's body shows it."""
    body = html.fromstring(page).body
    assert body is not None
    holders = body.xpath(".//*[text()[contains(., $text)]]", text=text)
    assert holders, f"{text!r} is not on the page"
    return [_isolating(holder) for holder in holders]


def _metas(page: str) -> set[str]:
    return {meta.text_content() for meta in html.fromstring(page).find_class("meta")}


async def test_stored_texts_are_isolated_from_what_stands_beside_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = [
        article(doc_id, title=TITLE, source=SOURCE, summary=EXCERPT, authors=AUTHORS)
        for doc_id in (SHOWN, OTHER)
    ]
    async with query_over(Node(*documents), monkeypatch) as client:
        search = (await client.get("/")).text
        shown = (await client.get(f"/articles/{SHOWN}")).text
    for page in (search, shown):  # the article page lists the other as similar
        assert set(_isolated(page, TITLE)) == {TITLE}
        assert set(_isolated(page, SOURCE)) == {SOURCE}
    assert _isolated(search, EXCERPT) == [EXCERPT, EXCERPT]
    assert _isolated(shown, AUTHORS[0]) == [AUTHORS[0]]
    # Beside them, outside what isolates each: the date, and the other authors.
    assert _metas(search) == {f"{SOURCE} · 2 January 2026"}
    assert _metas(shown) == {f"{SOURCE} · 2 January 2026 · {RLO}Ann, Bob", SOURCE}


async def test_the_tab_title_isolates_a_stored_title_and_the_readers_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An unmatched POP DIRECTIONAL ISOLATE first would close the isolate early; a
    # paragraph separator ends every isolate.
    words = f"\u2069{RLO}steppe\u2029אב"
    async with query_over(Node(article(SHOWN, title=TITLE)), monkeypatch) as client:
        shown = (await client.get(f"/articles/{SHOWN}")).text
        search = (await client.get("/", params={"q": words})).text

    def tab(page: str) -> str:
        return str(html.fromstring(page).findtext(".//title"))

    assert tab(shown) == "\u2068Caravan crosses the steppe\u2069 – Caravan"
    assert tab(search).startswith("\u2068steppe אב\u2069 – ")


async def test_facet_labels_and_the_suggested_words_are_isolated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    country, correction = f"{RLO}UZ", f"{RLO}caravan"
    answer = {
        "aggregations": {
            "source": {"buckets": [{"key": SOURCE, "doc_count": 123}]},
            "country": {"buckets": [{"key": country, "doc_count": 45}]},
        },
        "suggest": {
            "did_you_mean": [{"offset": 0, "length": 7, "options": [{"text": correction}]}]
        },
    }
    node = Node(article(SHOWN), article(OTHER), search_extra=answer)
    async with query_over(node, monkeypatch) as client:
        search = (await client.get("/", params={"q": "karavan"})).text
    assert _isolated(search, SOURCE) == [SOURCE]  # the facet's label, not its count beside it
    assert _isolated(search, country) == [country]
    assert _isolated(search, correction) == [correction]
