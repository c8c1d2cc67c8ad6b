"""Text to the index's normalised tokens, and a query word to the forms it is searched in.

Two normalised fields sit beside each text field (see services/indexer/mappings.py):

* `stem`: word forms. Cyrillic words go through the Russian Snowball stemmer, Latin
  ones through the English one (PyStemmer, the Snowball project's own C code), and
  both are then folded to one script, so "вокзала" and "вокзал" meet, and so do
  "sanctions" and "Sanction".
* `fold`: the words unstemmed but folded (`scripts.fold`), so Uzbek and Kazakh
  meet across scripts even where the two stemmers would cut them differently.

Both are whitespace-separated token lists indexed with the `whitespace` analyser,
which every distribution has: positions line up with the words, so phrases work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import cast

import Stemmer

from shared.language.scripts import OKINA_MARKS, fold, has_cyrillic

STEMMERS = ("english", "russian")
RUSSIAN_CASE_ENDINGS = ("а", "у", "е", "ом", "ой", "ы", "и")
# A word: letters and digits, with okina look-alikes inside it ("O'zbekiston" is
# one word); hyphens and other punctuation separate words, as Elasticsearch's
# standard tokenizer does.
WORD = re.compile(r"[^\W_]+(?:[" + re.escape(OKINA_MARKS) + r"][^\W_]+)*")
# Longer "words" are dropped: no reader types one, and analysing one is work an
# attacker chooses. (Elasticsearch's own tokenizers cut them into pieces this long.)
MAX_TOKEN_LENGTH = 255
# Text past this many characters of a field is not analysed (its words are not in the
# `stem` and `fold` copies; the plain field still has them): about 30,000 words, a
# short book, more than any article, so that one huge document cannot hold a batch up.
MAX_ANALYSED_CHARS = 200_000
_ENGLISH = Stemmer.Stemmer("english")
_RUSSIAN = Stemmer.Stemmer("russian")


def words(text: str) -> list[str]:
    """The words in `text`'s first MAX_ANALYSED_CHARS characters, up to MAX_TOKEN_LENGTH long."""
    found = WORD.findall(text[:MAX_ANALYSED_CHARS])
    # Checked in C first: a text with no overlong word (nearly all) is not filtered word
    # by word in Python.
    if max(map(len, found), default=0) <= MAX_TOKEN_LENGTH:
        return found
    return [w for w in found if len(w) <= MAX_TOKEN_LENGTH]


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The stem in the word's own script, lower case: "Вокзала" → "вокза"."""
    lower = word.lower()
    if has_cyrillic(lower):
        # Readers rarely type ё; the stemmer treats it as another letter.
        return str(_RUSSIAN.stemWord(lower.replace("ё", "е")))
    return str(_ENGLISH.stemWord(lower))


@lru_cache(maxsize=65_536)
def stem_token(word: str) -> str:
    """The `stem` field's token for a word."""
    # Not through stem's cache, which would hold the words a second time: in the
    # indexer nearly every lookup there was a miss, an insert and an eviction.
    return fold(stem.__wrapped__(word))


def declined_stems(name: str) -> list[str]:
    """The `stem` tokens of a Russian name's cases: "Астана" → "asta", "astan" ("Астане").

    The stemmer cuts a name differently by case, and a reader types the nominative;
    for a name, all of them are the name.
    """
    if not has_cyrillic(name):
        return [stem_token(name)]
    base = name[:-1] if name[-1].lower() in "аяоеиыь" else name
    return list(
        dict.fromkeys(
            [stem_token(name), *(stem_token(base + ending) for ending in RUSSIAN_CASE_ENDINGS)]
        )
    )


# A text's words are those of its whitespace-separated chunks (whitespace is never
# part of a word), and many chunks recur from article to article ("the", "в",
# "said,"): a chunk's `stem` and `fold` tokens are kept, so a text of known chunks
# costs a split and a dictionary lookup per chunk instead of a regular expression
# over every character and two lookups per word. Whether a text is one is told from
# its first _PROBE_CHARS characters; one with more than _NEW_CHUNKS_SHARE of new
# chunks there is analysed word by word (a new chunk costs several times what the
# lookups save) and _LEARNT_PER_TEXT of them are learnt, so the cache fills with the
# chunks that recur. Bounded, whatever the input: only chunks of up to
# _KEPT_CHUNK_CHARS characters are kept, in two generations of at most
# _CHUNKS_PER_GENERATION (a full one becomes the old one; the old chunks still in use
# move on): under 30 MB at the very worst, a few MB on real text.
_KEPT_CHUNK_CHARS = 40
_CHUNKS_PER_GENERATION = 16_384
_PROBE_CHARS = 200
_NEW_CHUNKS_SHARE = 0.03
_LEARNT_PER_TEXT = 2
# A chunk's tokens, each followed by a space, so that a text's are its chunks' joined
# as they are, without a separator or leaving out the chunks that have none.
_chunks: dict[str, tuple[str, str]] = {}
_older_chunks: dict[str, tuple[str, str]] = {}
_STEMS = itemgetter(0)
_FOLDS = itemgetter(1)


def _spaced(tokens: Iterable[str]) -> str:
    joined = " ".join(filter(None, tokens))
    return f"{joined} " if joined else ""


def _chunk_tokens(chunk: str) -> tuple[str, str]:
    global _chunks, _older_chunks
    tokens = _older_chunks.get(chunk)
    if tokens is None:
        found = words(chunk)
        tokens = _spaced(map(stem_token, found)), _spaced(map(fold, found))
    if len(chunk) <= _KEPT_CHUNK_CHARS:
        if len(_chunks) >= _CHUNKS_PER_GENERATION:
            _older_chunks, _chunks = _chunks, {}
        _chunks[chunk] = tokens
    return tokens


# Every indexed text is analysed twice in a row (its `stem` and `fold` copies): once.
# map keeps the per-chunk and per-word loops in C: this is the indexer's hottest code.
@lru_cache(maxsize=8)
def _analysed(text: str) -> tuple[str, str]:
    text = text[:MAX_ANALYSED_CHARS]
    head = text[:_PROBE_CHARS].split()
    new = list(map(_chunks.get, head)).count(None)
    if new > _NEW_CHUNKS_SHARE * len(head):
        for chunk in islice((c for c in head if c not in _chunks), _LEARNT_PER_TEXT):
            _chunk_tokens(chunk)
        each = words(text)
        return " ".join(filter(None, map(stem_token, each))), " ".join(
            filter(None, map(fold, each))
        )
    chunks = text.split()
    found: list[tuple[str, str] | None] = list(map(_chunks.get, chunks))
    known = (
        cast("list[tuple[str, str]]", found)
        if all(found)
        else [tokens or _chunk_tokens(chunk) for tokens, chunk in zip(found, chunks, strict=True)]
    )
    # Without the last token's space.
    return "".join(map(_STEMS, known))[:-1], "".join(map(_FOLDS, known))[:-1]


def stem_text(text: str) -> str:
    """The `stem` field of a text: each word's `stem_token`, space-separated."""
    return _analysed(text)[0]


def fold_text(text: str) -> str:
    """The `fold` field of a text: each word folded, space-separated."""
    return _analysed(text)[1]


def stem_prefix(word: str) -> str:
    """What all forms of `word` start with, in its script: "countries" → "countr".

    The English stemmer may rewrite an ending ("country" → "countri"), so the stem
    itself is not always a prefix of the word; the common part is.
    """
    lower, stemmed = word.lower(), stem(word)
    length = 0
    while length < min(len(lower), len(stemmed)) and lower[length] == stemmed[length]:
        length += 1
    return lower[:length]
