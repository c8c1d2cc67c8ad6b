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
from collections.abc import Sequence
from functools import lru_cache
from itertools import compress

import Stemmer

from shared.language._chunks import ChunkTable
from shared.language.scripts import (
    OKINA_MARKS,
    WORD_MARKS,
    WordCache,
    fold,
    fold_many,
    has_cyrillic,
    read_lines,
    readings,
)

STEMMERS = ("english", "russian")
RUSSIAN_CASE_ENDINGS = ("а", "у", "е", "ом", "ой", "ы", "и")
# A word: letters and digits, with okina look-alikes inside it ("O'zbekiston" is
# one word) and the marks a letter may carry ("Ташке\u0301нт", see
# scripts.readings); hyphens and other punctuation separate words, as
# Elasticsearch's standard tokenizer does.
_LETTERS = r"[^\W_]+(?:[" + WORD_MARKS + r"]+[^\W_]*)*"
WORD = re.compile(_LETTERS + r"(?:[" + re.escape(OKINA_MARKS) + "]" + _LETTERS + ")*")
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
    """The words in `text`'s first MAX_ANALYSED_CHARS characters, up to MAX_TOKEN_LENGTH
    long, as the analysis reads them (`scripts.readings`)."""
    found = WORD.findall(text[:MAX_ANALYSED_CHARS])
    # Checked in C first: a text with no overlong word (nearly all) is not filtered word
    # by word in Python.
    if max(map(len, found), default=0) <= MAX_TOKEN_LENGTH:
        return readings(found)
    return readings([w for w in found if len(w) <= MAX_TOKEN_LENGTH])


@WordCache
def stem(word: str) -> str:
    """The stem in the word's own script, lower case: "Вокзала" → "вокза"."""
    lower = word.lower()
    if has_cyrillic(lower):
        # Readers rarely type ё; the stemmer treats it as another letter.
        return str(_RUSSIAN.stemWord(lower.replace("ё", "е")))
    return str(_ENGLISH.stemWord(lower))


@WordCache
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


# The indexer analyses a batch of texts at once (`analyse`), and its cost is what each
# word occurrence costs. A text's words are those of its chunks (split at ASCII
# whitespace, which is never part of a word), and chunks recur ("the", "в", "said,"):
# the chunk table (`_chunks`, Rust: shared/language/chunks) keeps each chunk's `stem`
# and `fold` tokens, so a text of known chunks costs a split and a lookup per chunk
# there, without a Python object per chunk. The chunks of a batch not known yet are
# analysed here, together, each distinct one once: their words found by one regular
# expression over all of them, each distinct word of those stemmed and folded once
# (`_words_tokens`), and every chunk's tokens made by joins and one split. Bounded,
# whatever the input: chunks of up to _KEPT_CHUNK_BYTES and words of up to
# _KEPT_WORD_CHARS whose two fields' tokens have at most _KEPT_TOKENS_CHARS together
# are kept, each in two generations of at most _PER_GENERATION (a full one becomes the
# old one; what the old one still holds and a batch uses moves on): under 60 MB at the
# very worst (every entry as long as allowed, in four-byte characters). A batch's own
# tables last as long as the batch.
_KEPT_CHUNK_BYTES = 64
_KEPT_WORD_CHARS = 40
_KEPT_TOKENS_CHARS = 128
_PER_GENERATION = 16_384
_chunks = ChunkTable(MAX_ANALYSED_CHARS, _KEPT_CHUNK_BYTES, _KEPT_TOKENS_CHARS, _PER_GENERATION)
# A generation of kept words: the `stem` tokens and the `fold` tokens by word, each
# followed by a space, so that a chunk's are its words' joined as they are, without a
# separator or leaving out those that have none. (stems, folds) of the generation that
# takes new entries, and of the one before it.
_Generation = tuple[dict[str, str], dict[str, str]]
_words: _Generation = ({}, {})
_older_words: _Generation = ({}, {})
_WORD_OR_LINE = re.compile(WORD.pattern + r"|\n")
# Uncached: the batch sees each word once, and the stemmers' own cache costs more than
# it saves then.
_BATCH_STEMMERS = {
    "english": Stemmer.Stemmer("english", 0),
    "russian": Stemmer.Stemmer("russian", 0),
}


def clear_caches() -> None:
    """Forget every kept token (tests measuring the whole work)."""
    _chunks.clear()
    for kept in (*_words, *_older_words):
        kept.clear()
    for cached in (stem, stem_token, fold, _analysed):
        cached.cache_clear()


def indexed(word: str, token: str) -> bool:
    """Whether a word's `stem` or `fold` token is in the index: one token, at most twice
    the word and two long.

    Folding can make a word many times longer, and split it (U+FDFA is 18 letters and
    three spaces): unbounded, an article of such words became a document twenty times
    its size, and a query of them a thousand terms. Real words grow less ("щ" → "sh",
    "ﬃ" → "ffi").
    """
    return 0 < len(token) <= min(2 * len(word) + 2, MAX_TOKEN_LENGTH) and " " not in token


def _spaced(words: list[str], tokens: list[str]) -> list[str]:
    return [
        f"{token} " if indexed(word, token) else ""
        for word, token in zip(words, tokens, strict=True)
    ]


def _new_words_tokens(new: list[str]) -> tuple[list[str], list[str]]:
    """The `stem` and `fold` tokens of words, as stem_token and fold make them."""
    if not new:
        return [], []
    # The words as read (scripts.read_lines), then stem: lower case, then the Russian
    # stemmer (ё as е) for words with a Cyrillic letter, the English one for the rest.
    # Lower-cased joined, as fold_many does.
    joined = read_lines("\n".join(new))
    new = joined.split("\n")
    lower = joined.lower().split("\n")
    cyrillic = [has_cyrillic(word) for word in lower]
    latin = [not c for c in cyrillic]
    stemmed = dict(
        zip(
            compress(new, latin),
            _BATCH_STEMMERS["english"].stemWords(list(compress(lower, latin))),
            strict=True,
        )
    )
    russian = list(compress(new, cyrillic))
    if russian:
        joined = "\n".join(compress(lower, cyrillic)).replace("ё", "е")
        stemmed.update(
            zip(russian, _BATCH_STEMMERS["russian"].stemWords(joined.split("\n")), strict=True)
        )
    stems = fold_many([stemmed[word] for word in new])
    return stems, fold_many(new)


def _words_tokens(found: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Every word's spaced `stem` and `fold` tokens, from those kept or made now."""
    global _words, _older_words
    stems, folds = _words
    old_stems, old_folds = _older_words
    # Found by their folds, written after their stems: another thread may be adding
    # to the generation meanwhile, and a word whose fold is there has its stem. Copied
    # (a value once there never changes, so what is read is right).
    known = list(found.intersection(folds))
    batch_stems = dict(zip(known, map(stems.__getitem__, known), strict=True))
    batch_folds = dict(zip(known, map(folds.__getitem__, known), strict=True))
    rest = found.difference(known)
    older = [k for k in rest.intersection(old_folds) if k in old_stems]
    batch_stems.update(zip(older, map(old_stems.__getitem__, older), strict=True))
    batch_folds.update(zip(older, map(old_folds.__getitem__, older), strict=True))
    rest.difference_update(older)
    over = [w for w in rest if len(w) > MAX_TOKEN_LENGTH]
    rest.difference_update(over)
    new = list(rest)
    new_stems, new_folds = (_spaced(new, tokens) for tokens in _new_words_tokens(new))
    batch_stems.update(dict.fromkeys(over, ""))
    batch_folds.update(dict.fromkeys(over, ""))
    batch_stems.update(zip(new, new_stems, strict=True))
    batch_folds.update(zip(new, new_folds, strict=True))
    # Kept in the newest generation, a new one once it is full. Not the long words,
    # nor those whose tokens are long (letters that fold to several, ligatures): they
    # would make the bound above many times larger.
    keys = [
        k
        for k in older + new
        if len(k) <= _KEPT_WORD_CHARS
        and len(batch_stems[k]) + len(batch_folds[k]) <= _KEPT_TOKENS_CHARS
    ][:_PER_GENERATION]
    if len(_words[0]) + len(keys) > _PER_GENERATION:
        _older_words, _words = _words, ({}, {})
    # Both into the one generation taken here, though another thread may start a new
    # one in between; stems first, so that a reader that finds a fold finds its stem.
    stems, folds = _words
    stems.update(zip(keys, map(batch_stems.__getitem__, keys), strict=True))
    folds.update(zip(keys, map(batch_folds.__getitem__, keys), strict=True))
    return batch_stems, batch_folds


def _new_chunks_tokens(new: list[bytes]) -> tuple[list[str], list[str]]:
    """The chunks' spaced `stem` and `fold` tokens: the chunk table's `make`."""
    # The new chunks' words, line by line, with a newline between chunks. A chunk
    # holds no ASCII whitespace, so no word spans two, and no multi-byte character
    # was cut by the split.
    found_words = _WORD_OR_LINE.findall(b"\n".join(new).decode("utf-8", "surrogatepass"))
    distinct = set(found_words)
    distinct.discard("\n")
    word_stems, word_folds = _words_tokens(distinct)
    word_stems["\n"] = word_folds["\n"] = "\n"
    return (
        "".join(map(word_stems.__getitem__, found_words)).split("\n"),
        "".join(map(word_folds.__getitem__, found_words)).split("\n"),
    )


def analyse(texts: Sequence[str]) -> list[tuple[str, str]]:
    """Each text's `stem` and `fold` fields, as stem_text and fold_text give them.

    The indexer's hottest code: a batch's texts at once, so that each distinct chunk
    and word of the batch is analysed once.
    """
    return _chunks.analyse(list(texts), _new_chunks_tokens)


# Every indexed text is analysed twice in a row (its `stem` and `fold` copies): once.
@lru_cache(maxsize=8)
def _analysed(text: str) -> tuple[str, str]:
    return analyse([text])[0]


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
