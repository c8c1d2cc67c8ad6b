"""html_to_text / normalize_whitespace: clean text from feed HTML fragments."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.text import html_to_text
from shared.text import normalize_whitespace


def test_numeric_hex_entity_becomes_apostrophe() -> None:
    # The Uzbek apostrophe as andijonfk.uz writes it.
    assert html_to_text("Haqli g&#x27;alabaga erishdik") == "Haqli g'alabaga erishdik"


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("&laquo;Мясорубка&raquo;", "«Мясорубка»"),
        ("caf&eacute; &#233;", "café é"),
        ("a&nbsp;b", "a b"),
    ],
)
def test_entities_are_decoded(fragment: str, expected: str) -> None:
    assert html_to_text(fragment) == expected


def test_scripts_styles_and_noscript_are_dropped_but_surrounding_text_kept() -> None:
    fragment = (
        "<p>Before<script>window.Ya.adfoxCode.create({});</script> after</p>"
        "<style>p { color: red }</style><noscript>enable js</noscript>end"
    )
    text = html_to_text(fragment)
    assert "adfox" not in text
    assert "color" not in text
    assert "enable js" not in text
    assert text.startswith("Before after")
    assert text.endswith("end")


def test_tags_are_removed_and_img_leaves_nothing() -> None:
    # UOL-style description: an <img> then text after a whitespace run.
    fragment = (
        "<img src='https://conteudo.imguol.com.br/x.jpg' align=\"left\" />  \t"
        "Líder na pesquisa <b>Ibope</b>"
    )
    assert html_to_text(fragment) == "Líder na pesquisa Ibope"


def test_whitespace_runs_collapse_to_single_spaces() -> None:
    assert html_to_text("<span>a \t\u00a0  b</span>   c") == "a b c"


def test_br_gives_a_line_break() -> None:
    assert html_to_text("line one<br>line two") == "line one\nline two"


def test_blank_lines_between_paragraph_blocks_are_kept_as_one_blank_line() -> None:
    assert html_to_text("<p>one</p>\n\n\n<p>two</p>") == "one\n\ntwo"


def test_adjacent_paragraphs_become_blank_line_separated() -> None:
    assert html_to_text("<p>one</p><p>two</p>") == "one\n\ntwo"


@pytest.mark.parametrize(
    "plain",
    ["FK Andijon — yangiliklar", "Сто лет назад родилась Майя Плисецкая", "C# 7 – Stand der Dinge"],
)
def test_plain_text_passes_through(plain: str) -> None:
    assert html_to_text(plain) == plain


def test_plain_text_is_only_whitespace_normalised() -> None:
    assert html_to_text("  Scrum   Day\n 2016 ") == "Scrum Day\n2016"


def test_empty_fragment_is_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p>  </p>") == ""


def test_normalize_whitespace_keeps_paragraphs_as_single_blank_lines() -> None:
    text = "  first   line \n\n\n\n  second\tline  \n \t \nthird "
    assert normalize_whitespace(text) == "first line\n\nsecond line\n\nthird"


def test_normalize_whitespace_applies_nfc() -> None:
    decomposed = "Fa\u0308lle"  # "Fälle" with a combining diaeresis
    result = normalize_whitespace(decomposed)
    assert result == "Fälle"
    assert unicodedata.is_normalized("NFC", result)


def test_normalize_whitespace_drops_control_characters() -> None:
    assert normalize_whitespace("a\x00b\x07c\x1b") == "abc"


def test_zero_width_non_joiner_is_kept() -> None:
    word = "می\u200cخواهم"  # Persian "I want": ZWNJ is part of the spelling
    assert normalize_whitespace(word) == word


def test_normalize_whitespace_output_is_nfc_after_removals() -> None:
    # A soft hyphen (Cf) between a letter and a combining accent.
    result = normalize_whitespace("Cafe\u00ad\u0301")
    assert unicodedata.is_normalized("NFC", result)


@given(st.text(alphabet=st.characters(exclude_categories=["C"]), max_size=200))
def test_normalize_whitespace_is_idempotent_without_control_characters(text: str) -> None:
    once = normalize_whitespace(text)
    assert normalize_whitespace(once) == once
    assert once == once.strip()
    assert "\n\n\n" not in once
    assert "  " not in once


def test_text_that_hides_or_reorders_itself_is_dropped_and_scripts_spelling_kept() -> None:
    # "\u202egnp.exe" shows as "exe.png"; the tag characters hide text. Persian and
    # Arabic need the joiners and the directional marks: they stay.
    spoof = "Official statement\u202e gnp.exe\u202c from the ministry \u2066x\u2069 0"
    assert normalize_whitespace(spoof) == "Official statement gnp.exe from the ministry x 0"
    assert normalize_whitespace("hidden\U000e0041\U000e0042 tags\ufff9a\ufffb") == "hidden tagsa"
    assert normalize_whitespace("a\u2062b\u3164c\u206fd") == "abcd"
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert normalize_whitespace(f"England {england}") == f"England {england}"
    persian = (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200f(\u06f1\u06f4\u06f0\u06f3)\u200e"
    )
    assert normalize_whitespace(persian) == persian
