"""trafilatura's extractor in precision mode, fast, without comments or metadata: the
text bare_extraction gives for a tree, with one copy of the tree instead of three."""

from __future__ import annotations

import re
from copy import copy

from lxml.html import HtmlElement
from trafilatura.core import _forum_thread_page
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.main_extractor import extract_content
from trafilatura.settings import Extractor
from trafilatura.xml import delete_element, xmltotxt

# trafilatura's RAW_TREE_PRUNE_XPATH, REMOVE_COMMENTS_AND_LISTS_XPATH and
# REMOVE_COMMENTS_XPATH (trafilatura/xpaths.py), their tests written out for the walks
# below; a test holds them to the library's expressions.
_FOLLOW_UP_TAGS = frozenset({"div", "section", "aside"})
_FOLLOW_UP = re.compile("mvp-post-add-(?:box|wrap)|infinite-?scroll")
_APPENDED_ARTICLE = re.compile("mvp-post-add-(?:box|wrap)")
_SHARE_BUTTONS = "elementor-share-buttons"
_COMMENT_TAGS = frozenset({"div", "list", "section", "details"})
_COMMENT_LIST_TAGS = frozenset({"ol", "ul"})
_COMMENTS_ID = re.compile("^(?:[Cc]omment(?!ary)|comol)")
_COMMENTS_OR_DISQUS_ID = re.compile("^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)")
_COMMENTS_CLASS = re.compile("^[Cc]omment(?!ary)|(?:article|post)-comments")
_RAW_TAGS = tuple(_FOLLOW_UP_TAGS | _COMMENT_TAGS | _COMMENT_LIST_TAGS)


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
    _prune_raw(raw)
    # the pruned raw tree is read again only by the comparison and the recall stages,
    # none of which runs in fast precision mode, so it is cleaned in place
    cleaned = convert_tags(tree_cleaning(raw, options), options, options.url)
    if not is_forum:
        _prune_comments(cleaned)
    try:
        body, text = extract_content(cleaned, options)
    except (TypeError, ValueError):  # what bare_extraction turns into None
        return ""
    # the comments, off, are empty; the tree size check is off in the default settings
    if len(text) < options.min_output_size:
        return ""
    return xmltotxt(body, options.formatting) or ""


def _prune_raw(tree: HtmlElement) -> None:
    """prune_unwanted_nodes(tree, RAW_TREE_PRUNE_XPATH) then (tree,
    REMOVE_COMMENTS_AND_LISTS_XPATH), by one walk of the tree: in those searches libxml2
    calls a Python regular expression for each element they look at, and they looked at
    the whole page three times (a tenth of the main text's time)."""
    follow_ups: list[HtmlElement] = []
    share_buttons: list[HtmlElement] = []
    comments: list[HtmlElement] = []
    for element in tree.iterdescendants(*_RAW_TAGS):
        tag = element.tag
        ident, cls = element.get("id", ""), element.get("class", "")
        if tag in _FOLLOW_UP_TAGS:
            if (_FOLLOW_UP.search(ident) or _FOLLOW_UP.search(cls)) and (
                next(element.iterdescendants("h1"), None) is None
                or _APPENDED_ARTICLE.search(ident)
                or _APPENDED_ARTICLE.search(cls)
            ):
                follow_ups.append(element)
            if _SHARE_BUTTONS in cls:
                share_buttons.append(element)
        if tag in _COMMENT_LIST_TAGS:  # without the disqus ids
            if _COMMENTS_ID.search(ident) or _COMMENTS_CLASS.search(cls):
                comments.append(element)
        elif _is_comments(tag, ident, cls):
            comments.append(element)
    # Deleted in the searches' order: what a search finds in a part that an earlier one
    # deleted is deleted from that part alone (delete_element leaves a removed top alone).
    for element in (*follow_ups, *share_buttons, *comments):
        delete_element(element)


def _prune_comments(tree: HtmlElement) -> None:
    """prune_unwanted_nodes(tree, REMOVE_COMMENTS_XPATH), by one walk of the tree."""
    found = [
        element
        for element in tree.iterdescendants(*_COMMENT_TAGS)
        if _is_comments(element.tag, element.get("id", ""), element.get("class", ""))
    ]
    for element in found:
        delete_element(element)


def _is_comments(tag: object, ident: str, cls: str) -> bool:
    return tag in _COMMENT_TAGS and bool(
        _COMMENTS_OR_DISQUS_ID.search(ident) or _COMMENTS_CLASS.search(cls)
    )
