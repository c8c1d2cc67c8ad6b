"""What a reader typed, in every form the index holds it: pure functions.

The query keeps `simple_query_string` syntax (words, "phrases", `|`, `-`, `*`,
`~N`, parentheses). Each word and phrase becomes a group of alternatives: as
typed (the plain fields), stemmed (`stem.*`), folded to one script (`fold.*`),
and, for a place or currency name, every other name of it (places.toml):

    вокзала -Ташкент  →  (вокзала | vokza | vokzala) -(Ташкент | tashkent | toshkent | …)

A document that matches the typed form matches several alternatives and ranks
above one found through a stem or a synonym alone.

Here in shared/ because two services read queries: the query service for searches
and feeds, the indexer for the saved searches it runs against new articles
(shared/searching.py builds both from these).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.language.analysis import declined_stems, indexed, stem_prefix, stem_token, words
from shared.language.scripts import (
    OKINA_MARKS,
    fold,
    has_cyrillic,
    kazakh_latin_folds,
    uzbek_to_cyrillic,
    uzbek_to_latin,
)
from shared.language.synonyms import Synonyms

PLACES = Synonyms.bundled()
TEXT_FIELDS = (("title", 3), ("summary", 2), ("body", 1))
# The normalised copies of the text fields (see shared/language/analysis.py).
FORMS = ("stem", "fold")
FUZZY_FIELDS = ["title", "fold.title"]
# Words shorter than this are not made fuzzy: one edit would turn them into too many words.
FUZZY_MIN_LENGTH = 4
# Stems shorter than this are highlighted as typed: a two-letter prefix marks noise.
HIGHLIGHT_MIN_PREFIX = 3
MAX_HIGHLIGHT_PATTERNS = 24
# Longer "words" are not words, and Elasticsearch refuses regexps over 1,000 characters.
MAX_HIGHLIGHT_WORD = 40
_OKINA_OPTIONAL = "[" + OKINA_MARKS.replace("\\", "") + "]?"
# A word with `*` or `~` makes Elasticsearch read every term it could be, in every
# field: 125 one-letter prefixes (389 characters) took 1.75 s of the node's CPU, and
# 18 near spellings were refused as too many clauses after 0.24 s.
MAX_OPERATORS = 4
MIN_PREFIX_CHARS = 2
_SPECIAL = re.compile(r'[\s"|()]')
_SUFFIX = re.compile(r"(\*|~\d*)$")


@dataclass(frozen=True)
class Word:
    text: str
    signs: str = ""
    suffix: str = ""
    """`*` (prefix) or `~N` (edit distance), as typed."""

    @property
    def negated(self) -> bool:
        return "-" in self.signs


@dataclass(frozen=True)
class Phrase:
    text: str
    signs: str = ""
    slop: str = ""

    @property
    def negated(self) -> bool:
        return "-" in self.signs


Part = Word | Phrase | str
"""A word, a phrase, or what passes through unchanged (spaces, `|`, parentheses)."""


def parse(text: str) -> list[Part]:
    """`text` in simple_query_string syntax, split into words, phrases and the rest.

    Never fails: an unterminated phrase runs to the end, as Elasticsearch reads it.
    """
    parts: list[Part] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace() or char in "|()":
            parts.append(char)
            i += 1
            continue
        start = i
        while i < len(text) and text[i] in "+-":
            i += 1
        signs = text[start:i]
        if i < len(text) and text[i] == '"':
            end = text.find('"', i + 1)
            end = len(text) if end < 0 else end
            phrase = text[i + 1 : end]
            i = end + 1
            slop = re.match(r"~\d+", text[i:])
            parts.append(Phrase(phrase, signs, slop.group() if slop else ""))
            i += len(slop.group()) if slop else 0
            continue
        start = i
        while i < len(text) and not _SPECIAL.match(text[i]):
            i += 1
        word = text[start:i]
        if not word:
            parts.append(signs)
            continue
        suffix = _SUFFIX.search(word)
        parts.append(
            Word(
                word[: suffix.start()] if suffix else word, signs, suffix.group() if suffix else ""
            )
        )
    return parts


def operators_refusal(text: str) -> str | None:
    """Why the `*` and `~` words of `text` would cost the cluster too much, or None."""
    if "*" not in text and "~" not in text:  # nearly every search: no parse
        return None
    marked = [p for p in parse(text) if isinstance(p, Word) and p.suffix]
    if len(marked) > MAX_OPERATORS:
        return f"at most {MAX_OPERATORS} words may end in * or ~ ({len(marked)} do)"
    for word in marked:
        if word.suffix == "*" and _shortest_prefix(word.text) < MIN_PREFIX_CHARS:
            return f"a word ending in * needs {MIN_PREFIX_CHARS} letters before it"
    # Elasticsearch takes 0, 1 or 2 edits and refuses the search past them (a 400: the
    # search API's 503, and every saved search matched with it failed). Read from the
    # text itself: its parser ends a word where this one does not (at `+`).
    if any(edits not in ("0", "1", "2") for edits in _EDITS.findall(text)):
        return "a word ending in ~ may differ by 0, 1 or 2 letters"
    return None


# A word's `~N` (a phrase's, after its closing quote, is its slop: any N).
_EDITS = re.compile(r'(?<!")~(\d+)')
# A word's `~` with or without its N, as Elasticsearch's parser reads it from the text.
_NEAR = re.compile(r'(?<!")~\d*')


def saved_search_refusal(text: str) -> str | None:
    """operators_refusal, and near spellings: a saved search runs against every new
    article, round after round, and twenty of four `~2` words (one client's hour) took
    each round from 0.2 s to 7 s of the cluster's time, every saved search's matches
    waiting behind them."""
    if refusal := operators_refusal(text):
        return refusal
    if _NEAR.search(text):
        return "a saved search cannot ask for near spellings (a word ending in ~)"
    return None


def without_near_spellings(text: str) -> str:
    """`text` with its words' `~N` taken off (a phrase's slop kept): a saved search made
    before they were refused is matched on its words as typed."""
    return _NEAR.sub("", text) if "~" in text else text


def _shortest_prefix(text: str) -> int:
    """The letters of the shortest prefix a word with `*` sends: as typed (its words
    only: `.a*` is `a*` to the index) and, for one word, folded (`ьa*` is `a*`)."""
    found = words(_plain(text))
    typed = sum(map(len, found))
    return min(typed, len(fold(found[0]))) if len(found) == 1 else typed


def _joined(tokens: list[str]) -> str:
    if not tokens:
        return ""
    return tokens[0] if len(tokens) == 1 else '"' + " ".join(tokens) + '"'


def _forms(text: str) -> list[str]:
    """`text`'s stemmed and folded forms, each a term or a phrase of the index's tokens."""
    found = words(text)
    if not found:
        return []
    stems = [t for w in found if indexed(w, t := stem_token(w))]
    folds = [t for w in found if indexed(w, t := fold(w))]
    return [_joined(stems), _joined(folds)]


def _group(signs: str, alternatives: list[str]) -> str:
    unique = list(dict.fromkeys(a for a in alternatives if a))
    if len(unique) == 1:
        return signs + unique[0]
    return signs + "(" + " | ".join(unique) + ")"


def _plain(text: str) -> str:
    # Backslashes escape in simple_query_string; a stray one must not eat our `|`.
    return text.replace("\\", "")


# Words repeat (a reader's, and the place names a long text lists: 490 characters of them
# took 25 ms to expand and 110 to mark, each search); a word's forms are its own.
WORDS_KEPT = 4096


@lru_cache(maxsize=WORDS_KEPT)
def _word_query(word: Word, synonyms: Synonyms, fuzzy: bool) -> str:
    plain = _plain(word.text)
    found = words(plain)
    if not found:
        return word.signs + plain + word.suffix
    folded = fold(found[0]) if len(found) == 1 and indexed(found[0], fold(found[0])) else ""
    if word.suffix:
        # Prefix and fuzzy terms are not analysed: the folded spelling is given as well.
        single = [folded + word.suffix] if folded else []
        return _group(word.signs, [plain + word.suffix, *single])
    if fuzzy:
        edits = _edits(plain)
        if folded and edits:
            return _group(word.signs, [f"{plain}~{edits}", f"{folded}~{edits}"])
        return _group(word.signs, [plain, *_forms(plain)])
    alternatives = [plain, *_forms(plain)]
    if len(found) == 1:
        alternatives += kazakh_latin_folds(found[0])
    for name in synonyms.names_for(plain):
        alternatives += _forms(name)
        if len(words(name)) == 1:
            alternatives += declined_stems(name)
    return _group(word.signs, alternatives)


def _edits(word: str) -> int:
    # Elasticsearch's AUTO: one edit from 4 letters (3 is too short here), two from 6.
    if len(word) < FUZZY_MIN_LENGTH:
        return 0
    return 1 if len(word) < 6 else 2


def _phrase_query(phrase: Phrase) -> str:
    text = _plain(phrase.text)
    forms = (form.strip(chr(34)) for form in _forms(text))
    alternatives = [f'"{text}"', *(f'"{form}"' for form in forms if form)]
    return _group(phrase.signs, [a + phrase.slop for a in alternatives])


def expand(text: str, synonyms: Synonyms = PLACES, *, fuzzy: bool = False) -> str:
    """The query string sent to Elasticsearch for what the reader typed.

    `fuzzy`: for the titles-only second try, words within one or two edits.
    """
    out = []
    for part in parse(text):
        if isinstance(part, Word):
            out.append(_word_query(part, synonyms, fuzzy))
        elif isinstance(part, Phrase):
            out.append(_phrase_query(part))
        else:
            out.append(part)
    return "".join(out)


def spelled_words(text: str) -> int:
    """How many words the near-spelling try would spell: those of every word typed,
    as the analysis splits them (`a|b|c` is three); phrases are never spelt nearly."""
    return sum(len(words(part.text)) for part in parse(text) if isinstance(part, Word))


def loosenable(text: str) -> bool:
    """Whether "all words but one" keeps the query's meaning: two words or more, plain.

    With `|` or an exclusion the reader said how words combine; and with the OR
    operator an exclusion would turn into "or anything without it".
    """
    parts = parse(text)
    terms = [p for p in parts if not isinstance(p, str)]
    operators = any(isinstance(p, str) and p.strip() for p in parts)
    return len(terms) >= 2 and not operators and not any(t.signs for t in terms)


def search_fields() -> list[str]:
    """The text fields and their normalised copies, with their boosts."""
    fields = []
    for name, boost in TEXT_FIELDS:
        suffix = f"^{boost}" if boost != 1 else ""
        fields += [f"{name}{suffix}", *(f"{form}.{name}{suffix}" for form in FORMS)]
    return fields


def _pattern(word: str) -> str:
    """A Lucene regexp for the forms of `word` as the standard analyser indexes them.

    The okina may be any look-alike or missing in the text: after o and g (oʻ, gʻ)
    and where the reader typed one, it is optional.
    """
    lower = word.lower()
    prefix = stem_prefix(word)
    if len(prefix) >= HIGHLIGHT_MIN_PREFIX:
        lower, tail = prefix, ".*"
    else:
        tail = ""
    out = []
    for i, char in enumerate(lower):
        if char in OKINA_MARKS:
            out.append(_OKINA_OPTIONAL)
            continue
        out.append(re.escape(char) if not char.isalnum() else char)
        following = lower[i + 1] if i + 1 < len(lower) else ""
        if char in "og" and following not in OKINA_MARKS and following:
            out.append(_OKINA_OPTIONAL)
    return "".join(out) + tail


@lru_cache(maxsize=WORDS_KEPT)
def _word_patterns(word: str) -> tuple[str, ...]:
    """The patterns of the word and its Uzbek transliteration: marks "Ўзбекистон" for
    "Oʻzbekiston"."""
    other = uzbek_to_latin(word) if has_cyrillic(word) else uzbek_to_cyrillic(word)
    return (_pattern(word), _pattern(other))


def highlight_patterns(text: str, synonyms: Synonyms = PLACES) -> list[str]:
    """Regexps marking, in the plain text, the forms of each word the reader looks for."""
    patterns: dict[str, None] = {}
    for part in parse(text):
        if isinstance(part, str) or part.negated:
            continue
        names = synonyms.names_for(part.text) if isinstance(part, Word) else ()
        for source in (part.text, *names):
            for word in (w for w in words(_plain(source)) if len(w) <= MAX_HIGHLIGHT_WORD):
                patterns.update(dict.fromkeys(_word_patterns(word)))
                if len(patterns) >= MAX_HIGHLIGHT_PATTERNS:  # the rest would be cut
                    return list(patterns)[:MAX_HIGHLIGHT_PATTERNS]
    return list(patterns)


def highlight_query(
    text: str, plain_query: str, fields: list[str], synonyms: Synonyms = PLACES
) -> dict[str, Any]:
    """What the highlighter marks in `fields`: the words as typed, and their other forms."""
    should: list[dict[str, Any]] = [
        {"simple_query_string": {"query": plain_query, "fields": fields, "default_operator": "or"}}
    ]
    should += [
        {"regexp": {field: {"value": pattern}}}
        for pattern in highlight_patterns(text, synonyms)
        for field in fields
    ]
    return {"bool": {"should": should}}
