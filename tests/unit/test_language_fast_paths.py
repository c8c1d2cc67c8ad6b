"""The analysis's fast paths give what the plain definitions give."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.language import scripts
from shared.language.analysis import MAX_TOKEN_LENGTH, WORD, words
from shared.language.scripts import fold

LETTERS = "abkhzyeqxKHZYEQXхҳқкжзйеёэӛәǣæßÄäğşçñıøłđŞİΣσςǅ½²" + scripts.OKINA_MARKS


def _fold_by_definition(word: str) -> str:
    """fold as specified: transliterate and take diacritics off until stable, then the
    one spelling of each sound."""
    text = re.sub(scripts.OKINA_CLASS, "", word.lower())
    while True:
        plain = "".join(
            c
            for c in unicodedata.normalize(
                "NFKD", text.translate(scripts._FOLD_CYRILLIC).translate(scripts._FOLD_LATIN)
            )
            if not unicodedata.combining(c)
        ).lower()
        if plain == text:
            break
        text = plain
    text = text.replace("x", "h").replace("q", "k")
    return scripts._FOLD_RUNS.sub(scripts._fold_run, text)


@settings(max_examples=2000)
@given(st.text(max_size=12) | st.text(alphabet=LETTERS, max_size=12))
def test_fold_is_its_definition(word: str) -> None:
    assert fold.__wrapped__(word) == _fold_by_definition(word)


@given(st.lists(st.sampled_from(["ab", "вокзал", "x" * (MAX_TOKEN_LENGTH + 1), "é", " ", "'"])))
def test_words_leave_out_only_overlong_ones(parts: list[str]) -> None:
    text = "".join(parts)
    expected = [w for w in WORD.findall(text) if len(w) <= MAX_TOKEN_LENGTH]
    assert words(text) == expected
