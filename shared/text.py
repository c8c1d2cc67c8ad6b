"""Plain text as Caravan keeps it, whatever wrote it: no control or invisible
characters, single spaces, NFC. Ingest cleans what it publishes with it, and the query
service what readers type, so that the two meet."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# Control characters (Unicode Cc) but newline and tab, lone surrogates (Cs), and
# invisible characters that mean nothing in running text: the bidirectional embeddings,
# overrides and isolates (a title's "\u202egnp.exe" shows as "exe.png"), interlinear
# annotations, invisible operators, the Hangul fillers and the tag characters, which
# hide text; the tag characters of a flag (England's, Scotland's) stay with it. The
# zero-width (non-)joiners and the left-to-right and right-to-left marks are not among
# them: Persian and Arabic spelling, and emoji sequences, need them.
# One regular expression, not a test per character: whole articles pass through here.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u00ad\u115f\u1160\u180e\u200b\u2060-\u2064"
    "\u206a-\u206f\u3164\ufeff\uffa0\u202a-\u202e\u2066-\u2069\ufff9-\ufffb"
    "\U000e0000-\U000e007f]"
)


_FLAG = "\U0001f3f4"
_INVISIBLE_BUT_FLAGS = re.compile(
    f"({_FLAG}[\U000e0020-\U000e007e]+\U000e007f)|{_INVISIBLE.pattern}"
)


def _kept(match: re.Match[str]) -> str:
    return match[1] or ""  # a flag, whole; anything else matched goes


def _visible(text: str) -> str:
    # The flags' pattern only where a flag may be: tried at every character, it cost a
    # fifth more on every article.
    if _FLAG in text:
        return _INVISIBLE_BUT_FLAGS.sub(_kept, text)
    return _INVISIBLE.sub("", text)


# UAX #15's stream-safe text format: at most 30 combining marks in a row. NFC orders a
# run of marks by insertion sort, so a title of 100,000 marks took seconds (a whole
# feed's parse past its time limit); real text never has more than a handful.
MOST_MARKS_IN_A_ROW = 30


def _combining_marks() -> str:
    """A character class of every code point with a nonzero combining class (all lie
    below U+20000)."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x300, 0x20000):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(f"{chr(first)}-{chr(last)}" for first, last in ranges)


_MARK_RUN = re.compile(f"[{_combining_marks()}]{{{MOST_MARKS_IN_A_ROW + 1},}}")


def normalize_whitespace(text: str) -> str:
    """No control characters, single spaces, paragraphs kept as blank lines, then NFC.

    NFC comes last: removing a character can bring a letter and a combining
    mark together, which only a normalisation afterwards composes.
    """
    text = _visible(text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _MARK_RUN.sub(lambda run: run[0][:MOST_MARKS_IN_A_ROW], text)
    text = unicodedata.normalize("NFC", text)
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str) -> str:
    """normalize_whitespace, on one line: what a reader types in the search box. A
    no-break space (Russian typography's, after short words) split no word for
    Elasticsearch's query parser and became a term no document holds; an invisible
    character or a decomposed letter, which documents never keep, matched nothing."""
    return " ".join(normalize_whitespace(text).split())
