"""precision_text is trafilatura's bare_extraction in fast precision mode, on one copy."""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import pytest
from lxml.html import tostring
from trafilatura import bare_extraction
from trafilatura.core import _extract_and_compare, _prepare_tree, trafilatura_sequence
from trafilatura.settings import Extractor

from services.ingest.extract import parse_page, without_code
from services.ingest.precision import precision_text
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
