"""Bytes to Unicode: Cyrillic code pages, declarations that lie, byte-order marks."""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import re

import feedparser
import pytest

from services.ingest.charset import (
    GUESS_BYTES,
    _lookup,
    decode,
    document_charset,
    guess_sample,
    header_charset,
    xml_as_utf8,
)
from tests.conftest import REALDATA

MEDUZA = re.sub(r"<\?xml[^>]*\?>", "", (REALDATA / "feed-meduza-scraped.xml").read_text("utf-8"))
# Real Cyrillic text that the legacy code pages can carry (no «», dashes or emoji).
TEXT = MEDUZA.encode("koi8-r", "replace").decode("koi8-r")


@pytest.mark.parametrize("encoding", ["windows-1251", "koi8-r"])
def test_undeclared_cyrillic_code_pages_are_recognised(encoding: str) -> None:
    text, used = decode(TEXT.encode(encoding))
    assert text == TEXT
    assert used.replace("_", "-") in {"cp1251", "koi8-r"}


def test_html_meta_declaration_is_used() -> None:
    page = f'<html><head><meta charset="windows-1251"></head><body>{TEXT}</body></html>'
    assert decode(page.encode("cp1251")) == (page, "cp1251")


def test_header_wins_over_the_document_when_the_bytes_agree() -> None:
    page = f'<meta http-equiv="Content-Type" content="text/html; charset=utf-8">{TEXT}'
    assert decode(page.encode("koi8-r"), "text/html; charset=KOI8-R")[0] == page


def test_a_declaration_the_bytes_contradict_is_ignored() -> None:
    page = f"<meta charset='utf-8'><p>{TEXT}</p>"
    text, used = decode(page.encode("cp1251"), "text/html; charset=utf-8")
    assert text == page
    assert used == "cp1251"


@pytest.mark.parametrize("name", ["article-lsm-lv.html", "article-dw-fruehburgunder.html"])
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "text/html", None])
def test_one_stray_byte_leaves_a_utf8_page_utf8(name: str, content_type: str | None) -> None:
    served = (REALDATA / name).read_bytes()
    middle = len(served) // 2
    # Half a character, as a CMS cutting one in two leaves it.
    cut = served[:middle] + "ы".encode()[:1] + served[middle:]
    text, used = decode(cut, content_type)
    assert used == "utf-8"
    page = served.decode("utf-8")
    assert (
        text
        == page[: len(served[:middle].decode())] + "\ufffd" + page[len(served[:middle].decode()) :]
    )


def test_a_few_stray_bytes_in_a_long_utf8_text_are_replaced() -> None:
    page = "<p>Norvēģijā pēc zemes nogruvuma pieci bojāgājušie</p>" * 300
    # Ten characters of the 4,200 bytes past ASCII cut in two: each loses its last byte.
    stray = page.encode().replace("ģ".encode(), "ģ".encode()[:1], 10)
    text, used = decode(stray, "text/html; charset=utf-8")
    assert used == "utf-8"
    assert text == page.replace("ģ", "\ufffd", 10)


def test_a_single_byte_page_declared_utf8_is_still_guessed() -> None:
    page = f"<meta charset='utf-8'><p>{TEXT}</p>"
    assert decode(page.encode("koi8-r"), "text/html")[0] == page
    # A short word of another encoding is not the stray bytes of a UTF-8 one.
    assert "\ufffd" not in decode("Да".encode("cp1251"), "text/html; charset=utf-8")[0]


def test_byte_order_mark_wins_and_is_dropped() -> None:
    assert decode("\ufeffПривет, мир".encode("utf-16"), "text/html; charset=koi8-r") == (
        "Привет, мир",
        "utf-16",
    )
    assert decode(b"\xef\xbb\xbf<p>ok</p>")[0] == "<p>ok</p>"


def test_latin_1_labels_mean_windows_1252() -> None:
    assert decode("“quoted”".encode("cp1252"), "text/html; charset=ISO-8859-1")[0] == "“quoted”"


def test_declarations_are_read_from_header_and_document() -> None:
    assert header_charset('text/html; charset="windows-1251"') == "windows-1251"
    assert header_charset("text/html") is None
    assert document_charset(b"<?xml version='1.0' encoding='KOI8-R'?><rss/>") == "KOI8-R"
    assert document_charset(b'<meta content="text/html; charset=cp1251" http-equiv=x>') == (
        "cp1251"
    )


def test_a_windows_1251_feed_declaring_its_encoding_parses_to_unicode() -> None:
    feed = ('<?xml version="1.0" encoding="windows-1251"?>' + MEDUZA).encode("cp1251", "replace")
    parsed = feedparser.parse(xml_as_utf8(feed))
    assert parsed.feed.title == feedparser.parse(MEDUZA.encode()).feed.title
    assert len(parsed.entries) == 24


def test_a_header_naming_a_codec_that_is_no_charset_is_ignored() -> None:
    # The punycode codec fails with a bare UnicodeError, not a UnicodeDecodeError.
    assert decode(b"<p>ok</p>", "text/html; charset=punycode") == ("<p>ok</p>", "utf-8")


def test_python_only_codecs_named_by_a_page_are_not_used() -> None:
    assert decode(rb"<p>a\sb</p>", "text/html; charset=unicode_escape") == ("<p>a\\sb</p>", "utf-8")


@pytest.mark.parametrize("declared", ["header", "document"])
def test_a_feed_declaring_utf7_is_not_read_as_utf7(declared: str) -> None:
    # UTF-7 decodes `+2D0-` to a lone surrogate: re-encoding the feed as UTF-8 raised,
    # and every item of it was lost, on every poll.
    feed = b"<rss version='2.0'><channel><item><title>Tashkent +2D0- rates</title>"
    feed += b"<link>https://example.org/a</link></item></channel></rss>"
    if declared == "header":
        text = xml_as_utf8(feed, "application/rss+xml; charset=utf-7")
    else:
        text = xml_as_utf8(b"<?xml version='1.0' encoding='UTF-7'?>" + feed)
    parsed = feedparser.parse(text)
    assert [entry.title for entry in parsed.entries] == ["Tashkent +2D0- rates"]


@pytest.mark.parametrize(
    "label", ["utf-16", "UTF-16LE", "utf-16be", "utf_16", "utf-32", "unicodeFFFE", "u16"]
)
def test_a_meta_declaring_a_wide_encoding_on_an_ascii_page_is_read_as_utf8(label: str) -> None:
    page = f'<html><head><meta charset="{label}"></head><body><p>Tashkent</p></body></html>'
    text, encoding = decode(page.encode("ascii"))
    assert "<p>Tashkent</p>" in text
    assert encoding == "utf-8"


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-32", "u16", "U32"])
def test_a_header_declaring_a_wide_encoding_on_an_ascii_page_is_not_believed(label: str) -> None:
    page = b"<html><body><p>Tashkent</p></body></html>"
    text, encoding = decode(page, f"text/html; charset={label}")
    assert "<p>Tashkent</p>" in text
    assert encoding == "utf-8"
    # A UTF-16 page the header names rightly, without a byte order mark, is still read so.
    wide = "<p>Ташкент</p>".encode("utf-16-le")
    assert decode(wide, "text/html; charset=utf-16le") == ("<p>Ташкент</p>", "utf-16-le")


def test_a_utf16_page_with_its_byte_order_mark_is_still_utf16() -> None:
    page = "<meta charset='utf-16'><p>Ташкент</p>"
    assert decode(codecs.BOM_UTF16_LE + page.encode("utf-16-le")) == (page, "utf-16")


def test_every_label_pythons_codecs_know_is_still_read() -> None:
    labels = {*encodings.aliases.aliases, *encodings.aliases.aliases.values()}
    labels |= {"UTF-8", "utf 8", "Windows-1251", "KOI8-R", "ISO_8859-5", "x-mac-cyrillic"}
    for label in sorted(labels):
        try:
            expected = codecs.lookup(label).name
        except LookupError:
            expected = None
        try:
            found: str | None = _lookup(label).name
        except LookupError:
            found = None
        assert found == expected, label


def test_made_up_labels_leave_nothing_behind() -> None:
    # Python's codec search remembers every label it was asked for, known or not:
    # a server sending a new made-up label with each page grew the process for ever.
    before = len(encodings._cache)
    for n in range(300):
        text, _ = decode(b"plain text", f"text/html; charset=x-made-up-{n}-{'z' * 1000}")
        assert text == "plain text"
    assert len(encodings._cache) == before


def test_a_long_page_is_guessed_by_its_bytes_past_ascii() -> None:
    # Guessed whole, 5.8 MB of ASCII markup and Cyrillic at the end took 1.2 s of the
    # event loop (10 MB, 2.5 s) and came out as Central European: the guess reads a
    # sample now, made of what tells encodings apart.
    article = ("<p>" + "Привет мир, это проверка кодировки страницы. " * 20 + "</p>\n") * 50
    page = (
        b"<html><body>" + b"<p>plain text</p>\n" * 300_000 + article.encode("cp1251") + b"</body>"
    )
    text, encoding = decode(page)
    assert encoding == "cp1251"
    assert text.endswith(article + "</body>")
    sample = guess_sample(page)
    assert len(sample) <= GUESS_BYTES
    assert b"<p>plain text</p>" in sample[:256]  # what precedes the first byte past ASCII
    assert article.encode("cp1251")[:1000] in sample


@pytest.mark.parametrize("shift", range(4))
def test_the_sample_never_ends_inside_a_character(shift: int) -> None:
    # Cut at 256 KiB, or at 4 KiB into a run of CJK with no byte that ends a character,
    # half of a Shift_JIS character ruled Shift_JIS out: the page came out as UTF-8 with
    # replacement characters, depending on where the cut fell. A half-width kana (one
    # byte) starts each paragraph, so the characters do not fall on even bytes.
    paragraph = "ｱ" + "日本語のニュース記事です。東京の天気は晴れでした。" * 300 + "\n"
    text = paragraph * 60
    page = b"<p>" + b" " * shift + text.encode("shift_jis") + b"</p>"
    decoded, encoding = decode(page)
    assert encoding in ("cp932", "shift_jis")
    assert text in decoded
    assert len(guess_sample(page)) <= GUESS_BYTES
