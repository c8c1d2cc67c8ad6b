"""precision_text is trafilatura's bare_extraction in fast precision mode, on one copy."""

from __future__ import annotations

import hashlib
import inspect
from copy import deepcopy
from typing import Any

import pytest
from lxml.html import fromstring, tostring
from trafilatura import bare_extraction
from trafilatura.core import _extract_and_compare, _prepare_tree, trafilatura_sequence
from trafilatura.htmlprocessing import convert_tags, prune_unwanted_nodes, tree_cleaning
from trafilatura.main_extractor import _extract, extract_content, prune_unwanted_sections
from trafilatura.settings import TAG_CATALOG, Extractor
from trafilatura.xpaths import (
    DISCARD_IMAGE_ELEMENTS,
    OVERALL_DISCARD_XPATH,
    PRECISION_DISCARD_XPATH,
    RAW_TREE_PRUNE_XPATH,
    REMOVE_COMMENTS_AND_LISTS_XPATH,
    REMOVE_COMMENTS_XPATH,
    TEASER_DISCARD_XPATH,
)

from services.ingest.extract import parse_page, without_code
from services.ingest.precision import (
    _prune_comments,
    _prune_raw,
    _prune_sections,
    precision_text,
)
from tests.conftest import REALDATA

_OPTIONS: dict[str, Any] = {
    "fast": True,
    "favor_precision": True,
    "include_comments": False,
    "with_metadata": False,
}
# A thread-forum page (trafilatura keeps its comment containers after the raw prune)
_FORUM = (
    '<html><head><script type="application/ld+json">{"@type": "DiscussionForumPosting"}'
    "</script></head><body><article><p>The first post of the thread, long enough to keep.</p>"
    '<div class="comments"><p>A reply in the thread.</p></div>'
    "</article></body></html>"
)
_PAGES = [
    (REALDATA / name).read_text(encoding="utf-8")
    for name in ("article-lsm-lv.html", "article-heraldsun.html", "article-dw-fruehburgunder.html")
] + [_FORUM, "<html><body><nav><a href='/'>Home</a></nav></body></html>"]


@pytest.mark.parametrize("html", _PAGES)
def test_precision_text_is_bare_extractions_and_leaves_the_tree_alone(html: str) -> None:
    tree = parse_page(html)
    assert tree is not None
    without_code(tree)
    before = tostring(tree)
    document: Any = bare_extraction(tree, url="https://example.com/a", **_OPTIONS)
    expected = (document.text if document else "") or ""
    assert precision_text(tree, "https://example.com/a") == expected
    assert tostring(tree) == before


def test_precision_text_follows_trafilaturas_steps() -> None:
    # precision_text does these functions' steps for its options; a trafilatura that
    # changes them needs precision_text checked again (and this digest taken again).
    steps = (bare_extraction, trafilatura_sequence, _prepare_tree, _extract_and_compare)
    source = "\n".join(inspect.getsource(step) for step in steps)
    assert hashlib.sha256(source.encode()).hexdigest() == (
        "6ba486d9eeb89ab0400e2dd73c54ddd036fa51a5d1cec175fd961389e12a54a9"
    )
    # the output tree size check that bare_extraction has is off by default
    assert Extractor().max_tree_size is None


# What each of the searches takes and leaves, nested and side by side, tails and all.
_PRUNED = (
    "<html><body>"
    "<div id='infinite-scroll'><p>next article</p></div>tail 1"
    "<section class='infinitescroll'><h1>the article</h1><p>text</p></section>"
    "<aside class='mvp-post-add-box'><h1>appended</h1></aside>tail 2"
    "<div class='x elementor-share-buttons'>share</div>"
    "<span id='infinite-scroll'>a span</span>"
    "<div id='comments'>c<ul class='comment-list'><li>1</li></ul></div>tail 3"
    "<div id='Commentary'>kept</div><div id='disqus_thread'>d</div>"
    "<ul id='disqus_thread'>kept</ul><ol id='comol'>o</ol>"
    "<details class='post-comments'>p</details><list class='comments'>l</list>"
    "<p class='comments'>kept</p><section class='a comment'>kept</section>"
    "<div class='article-comments x'><div id='infinite-scroll'>nested</div></div>"
    "</body></html>"
)


_UNPRUNED = tostring(fromstring(_PRUNED))


def test_the_raw_prunes_are_trafilaturas() -> None:
    theirs, ours = parse_page(_PRUNED), parse_page(_PRUNED)
    assert theirs is not None
    assert ours is not None
    prune_unwanted_nodes(theirs, RAW_TREE_PRUNE_XPATH)
    prune_unwanted_nodes(theirs, REMOVE_COMMENTS_AND_LISTS_XPATH)
    _prune_raw(ours)
    assert tostring(ours) == tostring(theirs)
    assert tostring(ours) != _UNPRUNED


def test_the_comment_prune_is_trafilaturas() -> None:
    theirs, ours = parse_page(_PRUNED), parse_page(_PRUNED)
    assert theirs is not None
    assert ours is not None
    prune_unwanted_nodes(theirs, REMOVE_COMMENTS_XPATH)
    _prune_comments(ours)
    assert tostring(ours) == tostring(theirs)
    assert tostring(ours) != _UNPRUNED


def test_the_prunes_follow_trafilaturas_searches() -> None:
    # _prune_raw and _prune_comments write out these expressions; a trafilatura that
    # changes them needs the walks changed to match (and this digest taken again).
    searches = (*RAW_TREE_PRUNE_XPATH, *REMOVE_COMMENTS_AND_LISTS_XPATH, *REMOVE_COMMENTS_XPATH)
    expressions = "\n".join(x.path for x in searches)
    assert hashlib.sha256(expressions.encode()).hexdigest() == (
        "c40ed903c38a68493938306ca0b990a1764a28509a8c0f2f0471cc4efebba76f"
    )


# Each of prune_unwanted_sections' searches, nested and side by side; @id|@class and
# @id|@style are the first of the two in source order.
_SECTIONS = (
    "<html><body><div class='article'>"
    "<p>The article's first paragraph, with enough words to stay the main text here.</p>"
    "<div data-lp-replacement-content='1'>lp</div><span role='Navigation'>nav</span>"
    "<section data-component='MostPopularStories'>popular</section>"
    "<div class='x' id='cookie-note'>kept: the class comes first</div>"
    "<div id='cookie-note' class='x'>cookie</div><p id='share-bar'>share</p>"
    "<p class='widget'>widget</p><p class='x ad y'>ad</p><a class='widget'>kept: a link</a>"
    "<h2 class='comments-title'>Comments</h2><em id='reply-3'>reply</em>"
    "<em style='color: red' id='hidden'>kept: the style comes first</em>"
    "<b id='hidden-box'>hidden</b><i style='display:none'>none</i>"
    "<i aria-hidden='true'>aria</i><i class='noprint'>noprint</i>"
    "<div class='caption'>caption</div><div id='Teaser'>teaser</div>"
    "<header>header</header><div class='page-bottom'>bottom</div>"
    "<div id='x link'>link</div><p style='border: 1px'>border</p>"
    "<div class='menu'>tail kept<span class='x'>inner</span></div>after"
    "<p>The article's last paragraph, with enough words to stay the main text here.</p>"
    "</div></body></html>"
)
# All of its text in one boilerplate block: the guard keeps it.
_ALL_SIDEBAR = "<html><body><div class='sidebar'><p>Everything is here.</p></div></body></html>"


@pytest.mark.parametrize("html", [*_PAGES, _SECTIONS, _ALL_SIDEBAR])
@pytest.mark.parametrize("precision", [True, False])
@pytest.mark.parametrize("images", [True, False])
@pytest.mark.parametrize("keep_teasers", [True, False])
def test_the_section_prune_is_trafilaturas(
    html: str, precision: bool, images: bool, keep_teasers: bool
) -> None:
    options = Extractor(fast=True, precision=precision, comments=False)
    tags = {*TAG_CATALOG, *(("graphic",) if images else ())}
    cleaned = parse_page(html)
    assert cleaned is not None
    cleaned = convert_tags(tree_cleaning(cleaned, options), options)
    theirs, ours = deepcopy(cleaned), deepcopy(cleaned)
    prune_unwanted_sections(theirs, set(tags), options, keep_teasers=keep_teasers)
    _prune_sections(ours, set(tags), options, keep_teasers=keep_teasers)
    assert tostring(ours) == tostring(theirs)


def test_the_section_prune_takes_what_trafilaturas_takes() -> None:
    options = Extractor(fast=True, precision=True, comments=False)
    tree = parse_page(_SECTIONS)
    assert tree is not None
    _prune_sections(tree, set(TAG_CATALOG), options)
    text = " ".join(tree.itertext())
    assert "first paragraph" in text
    assert "last paragraph" in text
    assert text.count("kept") == 3
    assert "tail kept" not in text
    assert "after" in text
    for gone in ("lp", "popular", "cookie", "share", "widget", "reply", "hidden", "aria"):
        assert gone not in text


def test_the_section_prune_follows_trafilaturas_searches() -> None:
    # _prune_sections writes out these expressions and prune_unwanted_sections' steps,
    # and _extract_content runs extract_content's and _extract's code with it; a
    # trafilatura that changes them needs it changed to match (and this digest taken again).
    searches = (
        *OVERALL_DISCARD_XPATH,
        *DISCARD_IMAGE_ELEMENTS,
        *TEASER_DISCARD_XPATH,
        *PRECISION_DISCARD_XPATH,
    )
    steps = (prune_unwanted_sections, prune_unwanted_nodes, extract_content, _extract)
    source = "\n".join([*(x.path for x in searches), *(inspect.getsource(s) for s in steps)])
    assert hashlib.sha256(source.encode()).hexdigest() == (
        "673e454b9c0623f0c2711ae724d1abb3a3d0f3fa9c1ef88fd4a71ae6c8d85dfd"
    )
