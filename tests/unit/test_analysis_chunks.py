"""The `stem` and `fold` fields, word by word or from known chunks, are exactly each
word's tokens, and the chunk cache stays bounded whatever the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.language import analysis
from shared.language.analysis import fold_text, stem_text, stem_token, words
from shared.language.scripts import OKINA_MARKS, fold

# Letters of the region's scripts, digits, okina look-alikes, every kind of
# whitespace str.split knows, underscores, punctuation and combining marks.
ALPHABET = (
    "abcxyzKHQ0129_-.,«»“”…"
    "вокзалаЁёҚқЎўҒғҲҳәӘьъ"
    + OKINA_MARKS
    + " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000"
    + "\u0301\u0308ǣß½²"
)


def _word_by_word(text: str) -> tuple[str, str]:
    found = words(text)
    return (
        " ".join(filter(None, map(stem_token, found))),
        " ".join(filter(None, map(fold, found))),
    )


def _analysed(text: str) -> tuple[str, str]:
    analysis._analysed.cache_clear()
    return stem_text(text), fold_text(text)


@settings(max_examples=500)
@given(st.text(alphabet=ALPHABET, max_size=300))
def test_every_path_gives_each_words_tokens(text: str) -> None:
    expected = _word_by_word(text)
    analysis._chunks.clear()
    assert _analysed(text) == expected  # word by word: its chunks are new
    for chunk in text.split():
        analysis._chunk_tokens(chunk)
    assert _analysed(text) == expected  # from the chunks


def test_long_words_and_text_past_the_bound_are_left_out_alike() -> None:
    text = f"short {'x' * 300} {'ё' * 256}, also " * 3 + "tail " * analysis.MAX_ANALYSED_CHARS
    for chunk in text[: analysis._PROBE_CHARS].split():
        analysis._chunk_tokens(chunk)
    assert _analysed(text) == _word_by_word(text)


def test_recurring_chunks_are_learnt() -> None:
    analysis._chunks.clear()
    analysis._older_chunks.clear()
    text = "the council met, and the council voted"
    for _ in range(3):
        _analysed(text)
    assert set(text.split()) <= set(analysis._chunks)


def test_the_chunk_cache_is_bounded() -> None:
    for n in range(3 * analysis._CHUNKS_PER_GENERATION):
        analysis._chunk_tokens(f"w{n}")
    assert len(analysis._chunks) <= analysis._CHUNKS_PER_GENERATION
    assert len(analysis._older_chunks) <= analysis._CHUNKS_PER_GENERATION
    long_chunk = "y" * (analysis._KEPT_CHUNK_CHARS + 1)
    assert analysis._chunk_tokens(long_chunk) == (
        f"{stem_token(long_chunk)} ",
        f"{fold(long_chunk)} ",
    )
    assert long_chunk not in analysis._chunks
