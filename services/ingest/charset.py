"""Bytes from the web to Unicode, trusting declarations only as far as the bytes agree.

Order: a byte-order mark; the HTTP header's charset; the document's own
declaration (<meta charset>, <meta http-equiv>, <?xml encoding?>); then, with
nothing declared or every declaration contradicted by the bytes, UTF-8 if the
bytes are valid UTF-8 (or, with nothing but UTF-8 declared, nearly: a few stray
bytes replaced), else charset-normalizer's guess. Cyrillic sites still
serve Windows-1251 and KOI8-R, often without saying so, and a wrong guess
turns a whole article into mojibake.
"""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import pkgutil
import re

import charset_normalizer

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_DOCUMENT_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)"""
    rb"""|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""",
    re.IGNORECASE,
)
# Where browsers look for a <meta> declaration (HTML standard: the first 1024 bytes;
# real pages put long <head> scripts first, so look a little further).
_PRESCAN_BYTES = 4096
_WIDE_LABELS = ("utf-16", "utf16", "utf-32", "utf32", "ucs-2", "ucs2", "unicode")
# Labels that name Windows-1252 in practice (WHATWG Encoding standard).
_WINDOWS_1252_LABELS = frozenset(
    {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii"}
)


# What Python's codecs know, by the names their search function reads: a label looked
# up there that is none of these is remembered in its cache for ever, so a server
# sending a new made-up label with every page grew the process without bound.
_KNOWN_CODECS = frozenset(
    {*encodings.aliases.aliases, *encodings.aliases.aliases.values()}
    | {module.name for module in pkgutil.iter_modules(encodings.__path__)}
)


def _lookup(label: str) -> codecs.CodecInfo:
    """codecs.lookup of a label from the web; LookupError, without asking the codecs'
    search function, for one that names none of Python's codecs."""
    name = encodings.normalize_encoding(label.lower())
    if name not in _KNOWN_CODECS and name.replace(".", "_") not in _KNOWN_CODECS:
        raise LookupError(f"unknown encoding: {label[:40]}")
    return codecs.lookup(label)


def header_charset(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _wide(label: str) -> bool:
    """A label of UTF-16 or 32, as written (`unicodeFFFE`) or as Python's codecs read
    it (`u16`)."""
    if label.lower().replace("_", "-").startswith(_WIDE_LABELS):
        return True
    try:
        return _lookup(label).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        return False


def document_charset(content: bytes) -> str | None:
    match = _DOCUMENT_CHARSET.search(content[:_PRESCAN_BYTES])
    if not match:
        return None
    label = (match.group(1) or match.group(2)).decode("ascii")
    # A declaration found by reading the bytes as ASCII cannot be right about UTF-16
    # (or 32): the HTML standard's prescan takes UTF-8 then, never the wide encoding
    # that would turn an ASCII page into CJK.
    return "utf-8" if _wide(label) else label


def decode(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """The text and the name of the encoding it was read with."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return content.decode(encoding, errors="replace").lstrip("\ufeff"), encoding
    header = header_charset(content_type)
    if header and _wide(header) and b"\x00" not in content[:_PRESCAN_BYTES]:
        # UTF-16 or 32 without a byte order mark and without a single NUL among the
        # first bytes is not what they are: read so, an ASCII page becomes CJK.
        header = None
    declared = (header, document_charset(content))
    for label in (*declared, "utf-8"):
        if label and (decoded := _strict(content, label)) is not None:
            return decoded
    if all(label is None or _names_utf8(label) for label in declared):
        # A few bytes that are not UTF-8 (a CMS cutting a character in two) do not make a
        # UTF-8 page another encoding: read as a guess, its every letter was mojibake.
        # Browsers show one U+FFFD for each.
        text = content.decode("utf-8", errors="replace")
        if _nearly_utf8(content, text):
            return text, "utf-8"
    guess = charset_normalizer.from_bytes(guess_sample(content)).best()
    if guess is not None and _lookup(guess.encoding).name not in _NOT_WEB_ENCODINGS:
        return content.decode(guess.encoding, errors="replace"), guess.encoding
    return content.decode("utf-8", errors="replace"), "utf-8"


# Invalid sequences that still leave bytes UTF-8: this many, or one in a hundred of the
# bytes past ASCII (ten characters cut among 4,000 such bytes of Latvian were read as
# Korean). A page in a single-byte encoding has nearly all of its bytes past ASCII
# invalid: its letters are lead bytes, followed by letters or ASCII, not continuations.
_STRAY_SEQUENCES = 4
_ASCII = bytes(range(0x80))


def _names_utf8(label: str) -> bool:
    try:
        return _lookup(label).name == "utf-8"
    except LookupError:
        return False


def _nearly_utf8(content: bytes, text: str) -> bool:
    """`text`, `content` read as UTF-8 with replacement, has few replaced sequences."""
    invalid = text.count("\ufffd") - content.count("\ufffd".encode())
    past_ascii = len(content.translate(None, _ASCII))
    return invalid <= max(_STRAY_SEQUENCES, past_ascii // 100) and invalid * 10 <= past_ascii


# The guess decodes what it is given once per candidate encoding, on the event loop: a
# page of 10 MB with one byte that is not UTF-8 held it 2.5 s. It is given this much.
GUESS_BYTES = 256 * 1024
_PAST_ASCII = re.compile(rb"[\x80-\xff]")


def guess_sample(content: bytes) -> bytes:
    """What tells encodings apart, the bytes past ASCII, with what surrounds them, up to
    GUESS_BYTES: a page's ASCII markup says nothing, and may be all its first bytes."""
    if len(content) <= GUESS_BYTES:
        return content
    pieces: list[bytes] = []
    size = at = 0
    while (found := _PAST_ASCII.search(content, at)) is not None:
        start = max(at, found.start() - 256)
        # Not in the middle of a character: a guess given half of one rules out the right
        # multibyte encoding (a Shift_JIS page read as UTF-8).
        cut = start + _character_end(content[start : found.start() + 4096])
        if cut <= found.start():
            # No character ends in the window (a long run of CJK): the first that does.
            ending = _CHARACTER_ENDING.search(content, found.start(), start + GUESS_BYTES - size)
            if ending is None:
                break
            cut = ending.end()
        if size + cut - start > GUESS_BYTES:
            break
        pieces.append(content[start:cut])
        size += cut - start
        at = cut
    return b"".join(pieces) or content[:GUESS_BYTES]


# A byte below 0x40 is no second byte of a two-byte encoding (Shift_JIS, GBK, Big5, EUC)
# nor a UTF-8 continuation: a character ends right after one (GB18030's four-byte
# characters aside, whose second and fourth bytes are digits).
_CHARACTER_ENDING = re.compile(rb"[\x00-\x3f]")
_NOT_ENDING = bytes(range(0x40, 0x100))


def _character_end(piece: bytes) -> int:
    """Where `piece` is cut after its last byte below 0x40 (0 if it has none)."""
    return len(piece.rstrip(_NOT_ENDING))


def _strict(content: bytes, label: str) -> tuple[str, str] | None:
    label = label.lower()
    if label in _WINDOWS_1252_LABELS:
        label = "windows-1252"
    try:
        name = _lookup(label).name
        if name in _NOT_WEB_ENCODINGS:
            return None
        return content.decode(name), name
    # UnicodeError, not only UnicodeDecodeError: a header naming `punycode` or
    # `idna` gets a codec that fails with the bare class.
    except (LookupError, UnicodeError):
        return None


# Python's own codecs that no page is written in: a header naming one would have the
# body read as escapes or host names, not as text. And UTF-7, which browsers refuse: its
# decoder makes lone surrogates (`+2D0-`), which no UTF-8 holds, and a feed with one
# was lost whole.
_NOT_WEB_ENCODINGS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined", "utf-7"}
)


_XML_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])([\w.:-]+)""")


def xml_as_utf8(content: bytes, content_type: str | None = None) -> bytes:
    """An XML document re-encoded as UTF-8, its declaration saying so.

    XML parsers trust the declaration or fall back to Windows-1252; after our
    detection the bytes and the declaration agree, whatever the server sent.
    """
    text, _ = decode(content, content_type)
    return _XML_ENCODING.sub(r"\g<1>utf-8", text, count=1).encode("utf-8")
