"""The `stem` and `fold` fields, from known chunks or from a batch's new ones, are exactly
each word's tokens, whatever else is in the batch, and the kept tokens stay bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.language import analysis
from shared.language.analysis import analyse, fold_text, stem_text, stem_token, words
from shared.language.scripts import OKINA_MARKS, fold, fold_many

# Letters of the region's scripts, digits, okina look-alikes, every kind of
# whitespace str.split knows, underscores, punctuation, combining marks, and letters
# whose lower case depends on what is around them (Σ) or is longer (İ).
ALPHABET = (
    "abcxyzKHQ0129_-.,«»“”…"
    "вокзалаЁёҚқЎўҒғҲҳәӘьъ"
    + OKINA_MARKS
    + " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000"
    + "\u0301\u0308ǣß½²ΣσςΟΔİ"
)
TEXTS = st.text(alphabet=ALPHABET, max_size=300)


def _word_by_word(text: str) -> tuple[str, str]:
    found = words(text)
    return (
        " ".join(filter(None, map(stem_token, found))),
        " ".join(filter(None, map(fold, found))),
    )


@settings(max_examples=500)
@given(TEXTS)
def test_every_path_gives_each_words_tokens(text: str) -> None:
    expected = _word_by_word(text)
    analysis.clear_caches()
    assert analyse([text]) == [expected]  # its chunks and words new
    assert analyse([text]) == [expected]  # from the chunks kept
    analysis.clear_caches()
    assert (stem_text(text), fold_text(text)) == expected


@settings(max_examples=200)
@given(st.lists(TEXTS, max_size=6), st.booleans())
def test_a_batch_gives_each_text_what_it_gives_alone(texts: list[str], warm: bool) -> None:
    alone = [_word_by_word(text) for text in texts]
    analysis.clear_caches()
    if warm:
        analyse(texts[::2])  # some of the chunks known, others not
    assert analyse(texts) == alone


@settings(max_examples=1000)
@given(st.lists(st.text(max_size=12) | st.text(alphabet=ALPHABET.replace("\n", ""), max_size=12)))
def test_folding_words_together_is_folding_each(found: list[str]) -> None:
    # Any words but those with a newline (analyse's never have one).
    found = [word.replace("\n", "") for word in found]
    assert fold_many(found) == [fold.__wrapped__(word) for word in found]


def test_long_words_and_text_past_the_bound_are_left_out_alike() -> None:
    text = f"short {'x' * 300} {'ё' * 256}, also " * 3 + "tail " * analysis.MAX_ANALYSED_CHARS
    analysis.clear_caches()
    assert analyse([text, text]) == [_word_by_word(text)] * 2


def test_recurring_chunks_and_words_are_kept() -> None:
    analysis.clear_caches()
    text = "the council met, and the council voted"
    analyse([text])
    assert {c.decode() for c in analysis._chunks[0]} == set(text.split())
    assert set(analysis._words[0]) == set(words(text))


def test_what_is_kept_is_bounded() -> None:
    analysis.clear_caches()
    per = analysis._PER_GENERATION
    for start in range(0, 3 * per, per // 2):
        analyse([" ".join(f"w{n}" for n in range(start, start + per // 2))])
    for kept in (analysis._chunks, analysis._older_chunks, analysis._words, analysis._older_words):
        assert all(len(tokens) <= per for tokens in kept)
    long_chunk = "y" * (analysis._KEPT_CHUNK_BYTES + 1)
    long_word = "z" * (analysis._KEPT_WORD_CHARS + 1)
    assert analyse([long_chunk, f"{long_word}."]) == [
        (stem_token(long_chunk), fold(long_chunk)),
        (stem_token(long_word), fold(long_word)),
    ]
    assert long_chunk.encode() not in analysis._chunks[0]
    assert long_word not in analysis._words[0]
