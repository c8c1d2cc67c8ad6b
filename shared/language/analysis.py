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
from functools import lru_cache

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
    return [w for w in WORD.findall(text[:MAX_ANALYSED_CHARS]) if len(w) <= MAX_TOKEN_LENGTH]


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
    return fold(stem(word))


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


# Every indexed text is analysed twice in a row (its `stem` and `fold` copies): its
# words are found once. map/filter keep the per-word loop in C: this is the
# indexer's hottest code.
@lru_cache(maxsize=8)
def _text_words(text: str) -> tuple[str, ...]:
    return tuple(words(text))


def stem_text(text: str) -> str:
    return " ".join(filter(None, map(stem_token, _text_words(text))))


def fold_text(text: str) -> str:
    return " ".join(filter(None, map(fold, _text_words(text))))


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
