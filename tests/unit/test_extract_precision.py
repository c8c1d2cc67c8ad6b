"""precision_text is trafilatura's bare_extraction in fast precision mode, on one copy."""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import pytest
from lxml.html import fromstring, tostring
from trafilatura import bare_extraction
from trafilatura.core import _extract_and_compare, _prepare_tree, trafilatura_sequence
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.settings import Extractor
from trafilatura.xpaths import (
    RAW_TREE_PRUNE_XPATH,
    REMOVE_COMMENTS_AND_LISTS_XPATH,
    REMOVE_COMMENTS_XPATH,
)

from services.ingest.extract import parse_page, without_code
from services.ingest.precision import _prune_comments, _prune_raw, precision_text
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
