"""page_with_few_attributes / feed_with_few_attributes: tags of absurdly many
attributes cut before a parser reads them, everything else left as it was."""

from __future__ import annotations

import pytest

from services.ingest.markup import (
    MAX_ATTRIBUTES,
    feed_with_few_attributes,
    page_with_few_attributes,
)


def _attributes(count: int, first: int = 0) -> str:
    return "".join(f' a{k}="{k}"' for k in range(first, first + count))


def test_a_tag_keeps_its_first_attributes_and_its_content() -> None:
    html = f"<body><p{_attributes(MAX_ATTRIBUTES + 500)}>The article's text</p></body>"
    assert page_with_few_attributes(html) == (
        f"<body><p{_attributes(MAX_ATTRIBUTES)}>The article's text</p></body>"
    )


def test_only_the_tag_of_too_many_attributes_changes() -> None:
    many = f"<div{_attributes(MAX_ATTRIBUTES + 1)}>"
    html = f'<a href="/x" class="y">x</a>{many}<img src="/i.jpg" alt="i">'
    assert page_with_few_attributes(html) == (
        f'<a href="/x" class="y">x</a><div{_attributes(MAX_ATTRIBUTES)}><img src="/i.jpg" alt="i">'
    )


def test_a_tag_at_the_bound_is_the_same_string() -> None:
    html = f"<p{_attributes(MAX_ATTRIBUTES)}>text</p>"
    assert page_with_few_attributes(html) is html


@pytest.mark.parametrize(
    "value",
    ['"a > b"', "'a > b'", "unquoted", '""'],
)
def test_values_are_read_as_the_parser_reads_them(value: str) -> None:
    # A `>` inside quotes does not end the tag; each value stays whole.
    html = "<p" + f" x={value}" * (MAX_ATTRIBUTES + 3) + " />text"
    assert page_with_few_attributes(html) == "<p" + f" x={value}" * MAX_ATTRIBUTES + " />text"


def test_attributes_without_values_or_spaces_count_too() -> None:
    html = "<p" + " a" * (MAX_ATTRIBUTES + 1) + ">" + "<p" + '/b="1"' * (MAX_ATTRIBUTES + 1) + ">"
    assert page_with_few_attributes(html) == (
        "<p" + " a" * MAX_ATTRIBUTES + ">" + "<p" + '/b="1"' * MAX_ATTRIBUTES + ">"
    )


@pytest.mark.parametrize(
    "before",
    [
        # What a pass that skipped comments and scripts took for one, and the parser
        # did not (review): the tag after it went to the parser whole.
        "<!-->",
        "<!--->",
        "<!-- x --!>",
        "<title><script></title>",
        "<textarea><script></textarea>",
        "<![CDATA[<script>]]>",
        "</p <script>",
        "<!x<script>",
        "<?<script>",
    ],
)
def test_no_comment_or_script_lookalike_hides_a_tag_from_the_bound(before: str) -> None:
    html = f"<body>{before}<p{_attributes(MAX_ATTRIBUTES + 1)}>after</p></body>"
    assert page_with_few_attributes(html) == (
        f"<body>{before}<p{_attributes(MAX_ATTRIBUTES)}>after</p></body>"
    )
    assert feed_with_few_attributes(html.encode()) == (
        f"<body>{before}<p{_attributes(MAX_ATTRIBUTES)}>after</p></body>".encode()
    )


def test_a_script_tag_of_many_attributes_is_cut_and_its_text_kept() -> None:
    html = f"<script{_attributes(MAX_ATTRIBUTES + 1)}>if (a<b) go()</script>"
    assert page_with_few_attributes(html) == (
        f"<script{_attributes(MAX_ATTRIBUTES)}>if (a<b) go()</script>"
    )


def test_a_feed_keeps_its_self_closing_tags_well_formed() -> None:
    xml = f"<rss><channel><item><img{_attributes(MAX_ATTRIBUTES + 9)}/></item></channel></rss>"
    assert feed_with_few_attributes(xml.encode()) == (
        f"<rss><channel><item><img{_attributes(MAX_ATTRIBUTES)}/></item></channel></rss>".encode()
    )


@pytest.mark.parametrize(
    "html",
    ["", "<", "<p", "<p a='unclosed", "<!--", "<script>", "a < b > c", "<p a=>"],
)
def test_fragments_pass_unchanged(html: str) -> None:
    assert page_with_few_attributes(html) is html
    assert feed_with_few_attributes(html.encode()) == html.encode()
