"""trafilatura's extractor in precision mode, fast, without comments or metadata: the
text bare_extraction gives for a tree, with one copy of the tree instead of three."""

from __future__ import annotations

from copy import copy

from lxml.html import HtmlElement
from trafilatura.core import _forum_thread_page
from trafilatura.htmlprocessing import convert_tags, prune_unwanted_nodes, tree_cleaning
from trafilatura.main_extractor import extract_content
from trafilatura.settings import Extractor
from trafilatura.xml import xmltotxt
from trafilatura.xpaths import (
    RAW_TREE_PRUNE_XPATH,
    REMOVE_COMMENTS_AND_LISTS_XPATH,
    REMOVE_COMMENTS_XPATH,
)


def precision_text(tree: HtmlElement, url: str | None) -> str:
    """bare_extraction(tree, url=url, fast=True, favor_precision=True,
    include_comments=False, with_metadata=False).text, or "" where it gives None.

    bare_extraction copies the tree it is given, trafilatura_sequence copies the pruned
    copy again to clean it, and _prepare_tree copies the cleaned tree as a backup that
    only the readability/jusText comparison and comment extraction read (both off
    here): those are the same steps on one copy (tests hold the steps to a digest of
    trafilatura's code and the text to bare_extraction's)."""
    options = Extractor(output_format="python", fast=True, precision=True, comments=False, url=url)
    raw = copy(tree)
    is_forum = _forum_thread_page(raw)
    raw = prune_unwanted_nodes(raw, RAW_TREE_PRUNE_XPATH)
    raw = prune_unwanted_nodes(raw, REMOVE_COMMENTS_AND_LISTS_XPATH)
    # the pruned raw tree is read again only by the comparison and the recall stages,
    # none of which runs in fast precision mode, so it is cleaned in place
    cleaned = convert_tags(tree_cleaning(raw, options), options, options.url)
    if not is_forum:
        cleaned = prune_unwanted_nodes(cleaned, REMOVE_COMMENTS_XPATH)
    try:
        body, text = extract_content(cleaned, options)
    except (TypeError, ValueError):  # what bare_extraction turns into None
        return ""
    # the comments, off, are empty; the tree size check is off in the default settings
    if len(text) < options.min_output_size:
        return ""
    return xmltotxt(body, options.formatting) or ""
