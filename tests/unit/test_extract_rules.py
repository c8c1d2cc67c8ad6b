"""The rules applied to trafilatura's text: leads beside the body, link teasers, fallback."""

from __future__ import annotations

import lxml.html

from services.ingest.extract import (
    extract_article,
    lead_beside_body,
    paragraphs,
    restore_lead,
    without_link_teasers,
)

BODY = (
    "The council met on Tuesday to vote on the new bridge over the river, after a year "
    "of debate about its cost and where it should stand."
)
LEAD = "The bridge will be built after all, the council decided."


def _tree(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)


def test_a_lead_block_beside_the_body_is_restored() -> None:
    tree = _tree(
        f"<html><body><article><div class='lead'>{LEAD}</div>"
        f"<div class='body'><p>{BODY}</p></div></article></body></html>"
    )
    assert lead_beside_body(tree, LEAD, BODY)
    assert restore_lead(BODY, LEAD, tree) == f"{LEAD}\n\n{BODY}"


def test_a_standfirst_in_the_header_or_a_subheading_is_not_a_lead() -> None:
    in_header = _tree(
        f"<html><body><article><header><h1>Bridge</h1><p>{LEAD}</p></header>"
        f"<p>{BODY}</p></article></body></html>"
    )
    subheading = _tree(f"<html><body><article><h2>{LEAD}</h2><p>{BODY}</p></article></body></html>")
    elsewhere = _tree(
        f"<html><body><div class='rail'><p>{LEAD}</p></div>"
        f"<main><div><p>{BODY}</p></div></main></body></html>"
    )
    for tree in (in_header, subheading, elsewhere):
        assert restore_lead(BODY, LEAD, tree) == BODY


def test_a_teaser_that_only_starts_like_the_lead_is_not_it() -> None:
    tree = _tree(
        f"<html><body><article><div>{LEAD[:45]} and more, read on</div>"
        f"<div><p>{BODY}</p></div></article></body></html>"
    )
    assert restore_lead(BODY, LEAD, tree) == BODY


def test_paragraphs_made_of_a_link_are_dropped_others_kept() -> None:
    headline = "Council approves the budget for next year after a long night of talks"
    teaser = f"Read more: {headline}"
    quoted = "As the mayor put it in an interview, the bridge is overdue"
    tree = _tree(
        f"<html><body><article><p>{BODY}</p>"
        f"<p>Read more: <a href='/b'>{headline}</a></p>"
        f"<p>As the mayor put it <a href='/i'>in an interview</a>, the bridge is overdue"
        "</p></article></body></html>"
    )
    text = f"{BODY}\n\n{teaser}\n\n{quoted}"
    assert without_link_teasers(text, tree) == f"{BODY}\n\n{quoted}"


def test_paragraphs_are_blank_line_separated_and_normalised() -> None:
    assert paragraphs("First  line\n\n\nSecond\u200b line\n") == "First line\n\nSecond line"


def test_a_short_first_result_goes_through_the_fallback() -> None:
    # trafilatura's rules find little in a page made of bare <div>s; the comparison
    # with readability/jusText finds the text.
    divs = "".join(f"<div>{BODY} Sentence {n} adds to it.</div>" for n in range(8))
    page = f"<html><head><title>Bridge</title></head><body><div>{divs}</div></body></html>"
    extracted = extract_article(page, "https://site.example/bridge")
    assert extracted is not None
    assert "Sentence 7 adds to it." in extracted.text
    assert extracted.path == "trafilatura-precision+fallback"
