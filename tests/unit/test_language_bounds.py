"""The language analysis is linear and bounded: no text an attacker writes makes it stall.

Work is compared, not timed: the CPU time for an input twice as long, measured in the
same run, must be at most about twice (under three times; a quadratic step makes it
four). CPU time of this process, not the clock, so other work on the machine does not
count against either side.
The caches are emptied before each measurement, so every run does the whole work.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.language import analysis
from shared.language.analysis import (
    MAX_ANALYSED_CHARS,
    MAX_TOKEN_LENGTH,
    fold_text,
    stem_text,
    words,
)
from shared.language.scripts import LONGEST_CACHED_WORD, OKINA_MARKS, WordCache, fold

# Long enough that the work, not the call, is measured (a few milliseconds).
LENGTH = 40_000
RUNS = 5
# Doubling a linear step's input doubles its time; a quadratic one's quadruples it.
MAX_GROWTH = 3.0
# The letters the digraph folding rewrites, and their Cyrillic and capital forms.
FOLDED_LETTERS = "khzyeqxKHZYEQXхҳқкжзйеёэ"


def _clear_caches() -> None:
    analysis.clear_caches()


def _seconds(work: Callable[[str], object], text: str) -> float:
    _clear_caches()
    start = time.process_time()
    work(text)
    return time.process_time() - start


def _growth(work: Callable[[str], object], text: str, double: str) -> float:
    """How much longer `work` takes on `double` (twice `text`), the best of a few runs each."""
    # Interleaved, so that a slower moment of the machine weighs on both alike.
    single, twice = [], []
    for _ in range(RUNS):
        single.append(_seconds(work, text))
        twice.append(_seconds(work, double))
    return min(twice) / min(single)


def _repeated(unit: str, length: int) -> str:
    return unit * (length // len(unit) + 1)


def _assert_linear(
    work: Callable[[str], object], make: Callable[[int], str], length: int = LENGTH
) -> None:
    growth = _growth(work, make(length), make(2 * length))
    assert growth < MAX_GROWTH, f"doubling the input multiplied the work by {growth:.1f}"


# One word, as `fold` is given it: runs the old folding took one pass per letter of.
WORDS: dict[str, Callable[[int], str]] = {
    "k…kh": lambda n: "k" * n + "h",
    "zk…kh": lambda n: "z" + "k" * n + "h",
    "k…k, no h": lambda n: "k" * n,
    "y…ye": lambda n: "y" * n + "e",
    "y…y, no e": lambda n: "y" * n,
    "q…qx": lambda n: "q" * n + "x",
    "kh…kh": lambda n: _repeated("kh", n),
    "zh…zh": lambda n: _repeated("zh", n),
    "zk…zk": lambda n: _repeated("zk", n),
    "Cyrillic": lambda n: _repeated("қазақстанхж", n),
    "Cyrillic к…кх": lambda n: "к" * n + "х",
    "okina marks": lambda n: _repeated(OKINA_MARKS, n),
    "okina inside": lambda n: _repeated("oʻ", n),
    "mixed scripts": lambda n: _repeated("Oʻzbekiston" + "Ўзбекистон" + "Qazaqstan", n),
    "diacritics": lambda n: _repeated("ǣǖӛşñ", n),
}


@pytest.mark.parametrize("make", WORDS.values(), ids=WORDS.keys())
def test_folding_a_long_word_is_linear(make: Callable[[int], str]) -> None:
    _assert_linear(fold.__wrapped__, make)


# Texts, as an article's fields are analysed: long words among short ones, or one word.
TEXTS: dict[str, Callable[[int], str]] = {
    "one word": lambda n: "k" * n + "h",
    "words at the length bound": lambda n: _repeated("k" * (MAX_TOKEN_LENGTH - 1) + "h ", n),
    "words just over it": lambda n: _repeated("k" * MAX_TOKEN_LENGTH + "h ", n),
    "distinct long words": lambda n: " ".join("k" * 240 + f"{i}h" for i in range(n // 245)),
    "okina marks between letters": lambda n: _repeated("a'", n),
    "okina marks alone": lambda n: _repeated(OKINA_MARKS + " ", n),
    "Russian": lambda n: _repeated("железнодорожного вокзала ", n),
    "mixed scripts": lambda n: _repeated("Oʻzbekiston Ўзбекистон Qazaqstan Kazakhstan ", n),
}


@pytest.mark.parametrize("analyse", [stem_text, fold_text, words])
@pytest.mark.parametrize("make", TEXTS.values(), ids=TEXTS.keys())
def test_analysing_a_text_is_linear(
    analyse: Callable[[str], object], make: Callable[[int], str]
) -> None:
    _assert_linear(analyse, make)


# Letters (of any script), digits, the okina marks and the letters folding rewrites.
_LETTERS = st.one_of(
    st.sampled_from(FOLDED_LETTERS + OKINA_MARKS), st.characters(categories=["L", "N"])
)


# Shorter: letters with diacritics take a microsecond each to fold.
@settings(max_examples=12, deadline=None)
@given(st.text(_LETTERS, min_size=1, max_size=12))
def test_folding_any_long_word_is_linear(unit: str) -> None:
    _assert_linear(fold.__wrapped__, lambda n: _repeated(unit, n), LENGTH // 4)


@settings(max_examples=12, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_analysing_any_long_text_is_linear(unit: str) -> None:
    _assert_linear(stem_text, lambda n: _repeated(unit, n), LENGTH // 4)


def _fold_by_repeated_passes(word: str) -> str:
    """The digraph folding as it was: rewrite until nothing changes (quadratic)."""
    text = word
    while True:
        folded = text
        for spelling, single in (("kh", "h"), ("x", "h"), ("zh", "j"), ("q", "k"), ("ye", "e")):
            folded = folded.replace(spelling, single)
        if folded == text:
            return text
        text = folded


@given(st.text(st.sampled_from("khzyeqxaj"), max_size=40))
def test_one_pass_folds_the_digraphs_as_repeated_passes_did(word: str) -> None:
    assert fold(word) == _fold_by_repeated_passes(word)


def test_words_over_the_token_length_are_dropped() -> None:
    longest, over = "k" * MAX_TOKEN_LENGTH, "k" * (MAX_TOKEN_LENGTH + 1)
    assert words(f"a {longest} {over} b") == ["a", longest, "b"]
    assert fold_text(f"Toshkent {over}h Xorazm") == "toshkent horazm"


def test_what_folds_many_times_longer_than_its_word_is_dropped() -> None:
    # U+FDFA folds to 18 letters: 200,000 characters of them were 6.6 million in the
    # document's `stem` and `fold` fields (a 1.8 MB event became a 42 MB document).
    text = ("\ufdfa" * 14 + " ") * 13_000
    assert len(stem_text(text)) + len(fold_text(text)) == 0
    assert fold_text("\ufdfa Щука щи ﬃ") == "shuka shi ffi"
    for unit in ("\ufdfa ", "щ ", "ﬃx "):
        text = unit * (MAX_ANALYSED_CHARS // len(unit))
        assert len(stem_text(text)) + len(fold_text(text)) <= 5 * len(text)


def test_text_past_the_bound_is_not_analysed() -> None:
    text = "a " * MAX_ANALYSED_CHARS
    assert len(words(text)) == MAX_ANALYSED_CHARS // 2
    assert stem_text(text) == " ".join(["a"] * (MAX_ANALYSED_CHARS // 2))


def test_only_short_words_are_kept_by_a_word_cache() -> None:
    # 65,536 kept forms of 255-letter words grew the query service by 600 MB.
    calls: list[str] = []

    def made(word: str) -> str:
        calls.append(word)
        return word.upper()

    cached = WordCache(made, size=4)
    short, long = "a" * LONGEST_CACHED_WORD, "b" * (LONGEST_CACHED_WORD + 1)
    assert [cached(w) for w in (short, short, long, long)] == [
        w.upper() for w in (short, short, long, long)
    ]
    assert calls == [short, long, long]
    cached.cache_clear()
    cached(short)
    assert calls == [short, long, long, short]
